/**
 * The Nomad actuator: reads and sets the count of one task group of a Nomad
 * job through Nomad's HTTP API (`GET` / `POST /v1/job/:job_id/scale`).
 *
 * The HTTP client comes from the context (`FetchHttpClient.layer` in
 * production, anything in tests), so the actuator has no transport of its own.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import type { HttpClientResponse } from "@effect/platform"
import { Duration, Effect, Schedule, Schema } from "effect"

export class NomadError extends Schema.TaggedError<NomadError>()("NomadError", {
  /**
   * Status: Nomad answered with a non-2xx status. Timeout: no full answer within
   * `timeoutMs`. Transport: no connection. Decode: a 2xx answer that is not what
   * the API documents. UnknownGroup: the job has no such task group. Invalid:
   * the request was refused before sending.
   */
  reason: Schema.Literal("Status", "Timeout", "Transport", "Decode", "UnknownGroup", "Invalid"),
  /** The HTTP status when Nomad answered, else null. */
  status: Schema.NullOr(Schema.Number),
  message: Schema.String
}) {}

export interface NomadActuatorOptions {
  /** Nomad's HTTP address, e.g. `http://127.0.0.1:4646`. */
  readonly address: string
  /** An ACL token (`X-Nomad-Token`) with `read-job-scaling` and `scale-job` on the namespace. */
  readonly token?: string
  /** The job's namespace; Nomad's default namespace when absent. */
  readonly namespace?: string
  /** The job id, e.g. `tessera`. */
  readonly job: string
  /** Per attempt, including reading the answer. */
  readonly timeoutMs: number
  /** Retries after the first attempt (so `retries + 1` attempts at most). */
  readonly retries: number
  /** The first retry's delay; each next one doubles. */
  readonly retryBaseMs: number
}

export interface NomadActuator {
  /** The task group's desired count (its `count`). */
  readonly current: (group: string) => Effect.Effect<number, NomadError>
  /** Sets the task group's count; `reason` becomes the scaling event's message. */
  readonly scale: (
    group: string,
    count: number,
    reason: string,
    meta?: Readonly<Record<string, string>>
  ) => Effect.Effect<void, NomadError>
}

/** GET /v1/job/:job_id/scale (fields this code relies on; others are ignored). */
const TaskGroupScaleStatus = Schema.Struct({
  Desired: Schema.Int.pipe(Schema.nonNegative()),
  Placed: Schema.optional(Schema.Int),
  Running: Schema.optional(Schema.Int),
  Healthy: Schema.optional(Schema.Int),
  Unhealthy: Schema.optional(Schema.Int)
})
const JobScaleStatus = Schema.Struct({
  JobID: Schema.String,
  JobStopped: Schema.optional(Schema.Boolean),
  TaskGroups: Schema.Record({ key: Schema.String, value: TaskGroupScaleStatus })
})

/** POST /v1/job/:job_id/scale answers like a job update; EvalID only when an evaluation was created. */
const ScaleResponse = Schema.Struct({
  EvalID: Schema.optional(Schema.String),
  EvalCreateIndex: Schema.optional(Schema.Number),
  JobModifyIndex: Schema.optional(Schema.Number),
  Warnings: Schema.optional(Schema.String)
})

// A 429 is Nomad's rate limiter saying "later": as transient as a 5xx.
const isRetryable = (e: NomadError): boolean =>
  e.reason === "Timeout" || e.reason === "Transport" ||
  (e.reason === "Status" && e.status !== null && (e.status >= 500 || e.status === 429))

const bodyExcerpt = (text: string): string => {
  const t = text.trim().replace(/\s+/g, " ")
  return t.length > 300 ? `${t.slice(0, 300)}…` : t
}

export const makeNomadActuator = (
  options: NomadActuatorOptions
): Effect.Effect<NomadActuator, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const path = `/v1/job/${encodeURIComponent(options.job)}/scale`
    const url = `${options.address.replace(/\/+$/, "")}${path}`

    const prepare = (request: HttpClientRequest.HttpClientRequest): HttpClientRequest.HttpClientRequest => {
      let r = HttpClientRequest.acceptJson(request)
      if (options.token !== undefined && options.token !== "") r = HttpClientRequest.setHeader(r, "X-Nomad-Token", options.token)
      if (options.namespace !== undefined && options.namespace !== "") r = HttpClientRequest.setUrlParam(r, "namespace", options.namespace)
      return r
    }

    const retrySchedule = Schedule.exponential(Duration.millis(Math.max(0, options.retryBaseMs)), 2).pipe(
      Schedule.intersect(Schedule.recurs(Math.max(0, options.retries)))
    )

    /** One request, retried on transient failures; decodes a 2xx body with `schema`. */
    const send = <A, I>(
      request: HttpClientRequest.HttpClientRequest,
      schema: Schema.Schema<A, I>
    ): Effect.Effect<A, NomadError> => {
      const what = `${request.method} ${path}`
      const decode = Schema.decodeUnknown(schema)
      const onResponse = (response: HttpClientResponse.HttpClientResponse): Effect.Effect<A, NomadError> =>
        response.status >= 200 && response.status < 300
          ? response.json.pipe(
            Effect.flatMap((body) => decode(body)),
            Effect.mapError((e) =>
              new NomadError({ reason: "Decode", status: response.status, message: `${what}: unexpected answer: ${e.message}` })
            )
          )
          : response.text.pipe(
            Effect.orElseSucceed(() => ""),
            Effect.flatMap((text) =>
              Effect.fail(
                new NomadError({
                  reason: "Status",
                  status: response.status,
                  message: `${what} answered ${response.status}` + (text.trim() === "" ? "" : `: ${bodyExcerpt(text)}`)
                })
              )
            )
          )
      const attempt = client.execute(prepare(request)).pipe(
        Effect.mapError((e) =>
          new NomadError({
            reason: e._tag === "RequestError" && e.reason !== "Transport" ? "Invalid" : "Transport",
            status: null,
            message: `${what}: ${e.message}`
          })
        ),
        Effect.flatMap(onResponse),
        // Interrupting the request aborts it, so a server that never answers does not leak a socket.
        Effect.timeoutFail({
          duration: Duration.millis(options.timeoutMs),
          onTimeout: () =>
            new NomadError({ reason: "Timeout", status: null, message: `${what}: no answer within ${options.timeoutMs} ms` })
        })
      )
      return attempt.pipe(
        Effect.tapError((e) =>
          isRetryable(e) ? Effect.logWarning(`Nomad request failed, will retry if attempts remain: ${e.message}`) : Effect.void
        ),
        Effect.retry({ schedule: retrySchedule, while: isRetryable }),
        Effect.annotateLogs({ nomadJob: options.job })
      )
    }

    const current = (group: string): Effect.Effect<number, NomadError> =>
      send(HttpClientRequest.get(url), JobScaleStatus).pipe(
        Effect.flatMap((status) => {
          const tg = Object.hasOwn(status.TaskGroups, group) ? status.TaskGroups[group] : undefined
          return tg === undefined
            ? Effect.fail(
              new NomadError({
                reason: "UnknownGroup",
                status: null,
                message: `job "${options.job}" has no task group "${group}" (has: ${Object.keys(status.TaskGroups).join(", ") || "none"})`
              })
            )
            : Effect.succeed(tg.Desired)
        })
      )

    // Count is absolute, so re-sending a scale whose answer was lost (timeout, 5xx) is safe.
    const scale = (
      group: string,
      count: number,
      reason: string,
      meta: Readonly<Record<string, string>> = {}
    ): Effect.Effect<void, NomadError> => {
      if (!Number.isInteger(count) || count < 0) {
        return Effect.fail(new NomadError({ reason: "Invalid", status: null, message: `scale ${group}: count must be a whole number >= 0 (got ${count})` }))
      }
      const body = {
        Count: count,
        Target: { Group: group },
        // Nomad requires one of Message or Error.
        Message: reason === "" ? "scaled by the tessera scheduler" : reason,
        Meta: { source: "tessera-scheduler", ...meta }
      }
      return send(HttpClientRequest.post(url).pipe(HttpClientRequest.bodyUnsafeJson(body)), ScaleResponse).pipe(
        Effect.tap((answer) =>
          answer.Warnings !== undefined && answer.Warnings !== ""
            ? Effect.logWarning(`Nomad warnings scaling ${group} to ${count}: ${answer.Warnings}`)
            : Effect.void
        ),
        Effect.asVoid,
        Effect.annotateLogs({ nomadGroup: group })
      )
    }

    return { current, scale } satisfies NomadActuator
  })
