// A typed Loss Service client: every request and response type comes from loss-service.d.ts,
// which `npm run generate` writes from openapi/openapi.json. `npm run check` compiles this file,
// so a change to the API that breaks these calls fails the check.
import type { components, operations, paths } from "./loss-service.js";

type Schemas = components["schemas"];
export type MseLossRequest = Schemas["MseLossRequest"];
export type LossResponse = Schemas["LossResponse"];
export type Problem = Schemas["Problem"];
export type JobConfig = Schemas["JobConfig"];
export type Job = Schemas["Job"];
type JsonBody<Op extends keyof operations> = operations[Op] extends {
  requestBody?: { content: { "application/json": infer Body } };
}
  ? Body
  : never;

export class LossServiceError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${status} ${problem.title}: ${problem.detail ?? ""}`);
  }
}

export class LossServiceClient {
  constructor(
    private readonly baseUrl: string = "http://127.0.0.1:8000",
    private readonly apiKey?: string,
  ) {}

  private async call<T>(method: "GET" | "POST" | "DELETE", path: keyof paths | string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = body === undefined ? {} : { "Content-Type": "application/json" };
    if (this.apiKey) headers.Authorization = `Bearer ${this.apiKey}`;
    const response = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const payload: unknown = await response.json();
    if (!response.ok) throw new LossServiceError(response.status, payload as Problem);
    return payload as T;
  }

  mseLoss(body: JsonBody<"compute_mse_loss">): Promise<LossResponse> {
    return this.call("POST", "/v1/losses/mse_loss", body);
  }

  startMnistJob(config: JsonBody<"create_mnist_job">): Promise<Job> {
    return this.call("POST", "/v1/jobs/mnist", config);
  }

  job(id: string): Promise<Job> {
    return this.call("GET", `/v1/jobs/${encodeURIComponent(id)}`);
  }
}

// The tensor forms of docs/contract.md type-check as request fields.
const float32 = new Float32Array([1.5, 2.0, 3.2]);
export const examples: MseLossRequest[] = [
  { input: [1.5, 2.0, 3.2], target: [1.0, 2.5, 2.8], grad: ["input"] },
  { input: { shape: [3], dtype: "float32", data: [1.5, 2.0, 3.2] }, target: [1.0, 2.5, 2.8] },
  {
    input: { shape: [3], dtype: "float32", base64: btoa(String.fromCharCode(...new Uint8Array(float32.buffer))) },
    target: [1.0, 2.5, 2.8],
    params: { reduction: "sum" },
    encoding: "base64",
  },
];
export const smallJob: JobConfig = { epochs: 1, train_samples: 512, optimizer: "sgd", loss: "cross_entropy" };
