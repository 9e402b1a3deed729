#!/usr/bin/env node
// A Loss Service client for Node.js 18+ using the built-in fetch; no npm packages.
//
//   node examples/node/client.mjs loss  [base-url]   # MSE with gradients, JSON tensors
//   node examples/node/client.mjs base64 [base-url]  # a Float32Array sent and received as base64
//   node examples/node/client.mjs grade [base-url]   # grade a submitted loss and gradient
//   node examples/node/client.mjs job   [base-url]   # start a small MNIST job, follow it (SSE)
//
// base-url defaults to $LOSS_SERVICE_URL, then http://127.0.0.1:8000; $LOSS_SERVICE_API_KEY is
// sent as a bearer key when set. Each command prints one JSON object per line.

import { Buffer } from "node:buffer";
import { pathToFileURL } from "node:url";

export class LossServiceError extends Error {
  constructor(status, problem) {
    super(`${status} ${problem.title ?? ""}: ${problem.detail ?? JSON.stringify(problem)}`);
    this.status = status;
    this.problem = problem; // RFC 9457: type, title, status, detail, errors[{loc, msg}]
  }
}

export class LossServiceClient {
  constructor(baseUrl = "http://127.0.0.1:8000", { apiKey } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  }

  async request(method, path, body) {
    const response = await fetch(this.baseUrl + path, {
      method,
      headers: { ...this.headers, ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    const payload = text ? JSON.parse(text) : null;
    if (!response.ok) throw new LossServiceError(response.status, payload ?? {});
    return { payload, requestId: response.headers.get("x-request-id") };
  }

  async computeLoss(name, body) {
    return (await this.request("POST", `/v1/losses/${encodeURIComponent(name)}`, body)).payload;
  }

  async grade(body) {
    return (await this.request("POST", "/v1/grade", body)).payload;
  }

  async startMnistJob(config) {
    return (await this.request("POST", "/v1/jobs/mnist", config)).payload;
  }

  // Server-Sent Events of a job until its `done` event; reconnects with Last-Event-ID when the
  // stream breaks, so no event is missed or repeated.
  async *followJob(jobId, { maxReconnects = 5 } = {}) {
    let lastEventId = null;
    for (let attempt = 0; attempt <= maxReconnects; attempt++) {
      const response = await fetch(`${this.baseUrl}/v1/jobs/${jobId}/events`, {
        headers: {
          ...this.headers,
          Accept: "text/event-stream",
          ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}),
        },
      });
      if (!response.ok) throw new LossServiceError(response.status, await response.json());
      for await (const event of parseEventStream(response.body)) {
        if (event.id) lastEventId = event.id;
        yield event;
        if (event.event === "done") return;
      }
    }
    throw new Error(`the event stream of job ${jobId} kept breaking`);
  }
}

// Parses a text/event-stream body into {id, event, data} (data parsed as JSON).
export async function* parseEventStream(body) {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { id: null, event: "message", data: [] };
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue; // comments are keep-alives
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") event.data.push(value);
        else if (field === "id") event.id = value;
        else if (field === "event") event.event = value;
      }
      if (event.data.length) yield { ...event, data: JSON.parse(event.data.join("\n")) };
    }
  }
}

// {shape, dtype: "float32", base64}: the array's bytes, little-endian as on every platform
// Node runs on (x86-64, arm64).
export function float32Tensor(values, shape = [values.length]) {
  const array = values instanceof Float32Array ? values : Float32Array.from(values);
  const bytes = Buffer.from(array.buffer, array.byteOffset, array.byteLength);
  return { shape, dtype: "float32", base64: bytes.toString("base64") };
}

export function decodeFloat32Tensor(tensor) {
  if (tensor.dtype !== "float32") throw new Error(`expected float32, got ${tensor.dtype}`);
  const bytes = Buffer.from(tensor.base64, "base64");
  // Copy into a fresh, aligned buffer: Buffer's pool offset need not be a multiple of 4.
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

const INPUT = [1.5, 2.0, 3.2];
const TARGET = [1.0, 2.5, 2.8];

const commands = {
  async loss(client) {
    const result = await client.computeLoss("mse_loss", {
      input: INPUT,
      target: TARGET,
      grad: ["input"],
    });
    return [{ loss: result.loss, grad_input: result.grad.input, dtype: result.dtype }];
  },

  async base64(client) {
    const input = new Float32Array([0.25, -1.5, 2.0, 0.75, 3.0, -0.5]);
    const target = new Float32Array([0.0, -1.0, 2.5, 1.0, 2.0, 0.0]);
    const result = await client.computeLoss("smooth_l1_loss", {
      input: float32Tensor(input, [2, 3]),
      target: float32Tensor(target, [2, 3]),
      params: { beta: 0.5 },
      grad: true,
      encoding: "base64",
    });
    const grad = result.grad.input;
    return [{ loss: result.loss, grad_shape: grad.shape, grad_input: [...decodeFloat32Tensor(grad)] }];
  },

  async grade(client) {
    const reference = await client.computeLoss("mse_loss", { input: INPUT, target: TARGET, grad: ["input"] });
    const request = { loss: "mse_loss", input: INPUT, target: TARGET };
    const right = await client.grade({
      ...request,
      submission: { loss: reference.loss, grad: { input: reference.grad.input } },
    });
    const wrong = await client.grade({ ...request, submission: { loss: reference.loss * 2 } });
    return [
      { submission: "reference", passed: right.passed, checks: right.checks.length },
      { submission: "doubled", passed: wrong.passed, checks: wrong.checks.length },
    ];
  },

  async job(client) {
    const config = JSON.parse(
      process.env.LOSS_SERVICE_JOB_CONFIG ??
        '{"epochs": 1, "train_samples": 512, "test_samples": 256, "batch_size": 64, "seed": 0}',
    );
    const job = await client.startMnistJob(config);
    const lines = [{ job: job.id, status: job.status }];
    const seen = {};
    for await (const { event, data } of client.followJob(job.id)) {
      seen[event] = (seen[event] ?? 0) + 1;
      if (event === "epoch") lines.push({ epoch: data.epoch, test_accuracy: data.test_accuracy });
      if (event === "done") lines.push({ done: data.status, error: data.error, events: seen });
    }
    return lines;
  },
};

async function main(argv) {
  const [command, baseUrl] = argv;
  if (!commands[command]) {
    console.error(`usage: client.mjs {${Object.keys(commands).join("|")}} [base-url]`);
    return 2;
  }
  const url = baseUrl ?? process.env.LOSS_SERVICE_URL ?? "http://127.0.0.1:8000";
  const client = new LossServiceClient(url, { apiKey: process.env.LOSS_SERVICE_API_KEY });
  for (const line of await commands[command](client)) console.log(JSON.stringify(line));
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      console.error(error instanceof LossServiceError ? JSON.stringify(error.problem) : error);
      process.exit(1);
    },
  );
}
