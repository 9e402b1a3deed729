"""The loss catalogue: every loss in torch.nn.functional, plus sigmoid focal loss."""
