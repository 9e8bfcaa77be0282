import { FetchHttpClient } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Logger, LogLevel } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, beforeEach } from "vitest"
import { makeNomadActuator, type NomadActuatorOptions, NomadError } from "../../src/scheduler/autoscale/NomadActuator.js"

interface Seen {
  readonly method: string
  readonly path: string
  readonly query: Record<string, string>
  readonly headers: Http.IncomingHttpHeaders
  readonly body: unknown
}

type Answer = { readonly status: number; readonly json?: unknown; readonly text?: string } | "hang"

/**
 * A stand-in for Nomad's `/v1/job/:job_id/scale` as documented: GET answers
 * the job scale status, POST takes `{ Count, Target: { Group }, Message, Meta }`
 * and answers like a job update. `answers` scripts the status of each next request;
 * past the script the endpoint behaves.
 */
let server: Http.Server
let address = ""
let seen: Array<Seen> = []
let answers: Array<Answer> = []
let desired: Record<string, number> = {}

const scaleStatus = () => ({
  JobCreateIndex: 10,
  JobID: "tessera",
  Namespace: "default",
  JobModifyIndex: 18,
  JobStopped: false,
  TaskGroups: Object.fromEntries(
    Object.entries(desired).map(([g, n]) => [g, { Desired: n, Events: null, Healthy: n, Placed: n, Running: n, Unhealthy: 0 }])
  )
})

beforeAll(async () => {
  server = Http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x")
      const raw = Buffer.concat(chunks).toString("utf8")
      let body: unknown = raw
      try {
        body = raw === "" ? undefined : JSON.parse(raw)
      } catch {
        // keep the raw text
      }
      seen.push({ method: req.method ?? "", path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, body })
      const scripted = answers.shift()
      if (scripted === "hang") return
      const send = (status: number, payload: string, type: string) => {
        res.writeHead(status, { "content-type": type })
        res.end(payload)
      }
      if (scripted !== undefined) {
        return scripted.json !== undefined
          ? send(scripted.status, JSON.stringify(scripted.json), "application/json")
          : send(scripted.status, scripted.text ?? "", "text/plain")
      }
      const m = /^\/v1\/job\/([^/]+)\/scale$/.exec(url.pathname)
      if (m === null || decodeURIComponent(m[1]!) !== "tessera") return send(404, "job not found", "text/plain")
      if (req.method === "GET") return send(200, JSON.stringify(scaleStatus()), "application/json")
      if (req.method === "POST") {
        const b = body as { Count?: unknown; Target?: { Group?: unknown } }
        if (typeof b?.Target?.Group !== "string") return send(400, "missing task group name", "text/plain")
        if (typeof b.Count === "number") desired[b.Target.Group] = b.Count
        return send(200, JSON.stringify({ EvalCreateIndex: 45, EvalID: "116f3ede", Index: 45, JobModifyIndex: 44, KnownLeader: false, LastContact: 0, Warnings: "" }), "application/json")
      }
      send(405, "method not allowed", "text/plain")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

beforeEach(() => {
  seen = []
  answers = []
  desired = { gateway: 2, region: 3 }
})

const options = (over: Partial<NomadActuatorOptions> = {}): NomadActuatorOptions => ({
  address,
  job: "tessera",
  timeoutMs: 2000,
  retries: 3,
  retryBaseMs: 1,
  ...over
})

/** Runs `f` against an actuator with the fetch client, the retry warnings silenced. */
const withActuator = <A, E>(
  over: Partial<NomadActuatorOptions>,
  f: (actuator: Effect.Effect.Success<ReturnType<typeof makeNomadActuator>>) => Effect.Effect<A, E>
) =>
  makeNomadActuator(options(over)).pipe(
    Effect.flatMap(f),
    Effect.provide(FetchHttpClient.layer),
    Logger.withMinimumLogLevel(LogLevel.None)
  )

const failure = <A>(e: Either.Either<A, NomadError>): NomadError => {
  if (Either.isRight(e)) throw new Error(`expected a NomadError, got ${JSON.stringify(e.right)}`)
  return e.left
}

describe("NomadActuator", () => {
  it.live("scale POSTs Count, Target.Group, Message and Meta to /v1/job/:job/scale with the token", () =>
    withActuator({ token: "secret-token" }, (nomad) => nomad.scale("region", 5, "players: 130 need 4 instances", { decision: "ScaleUp" })).pipe(
      Effect.map(() => {
        expect(seen).toHaveLength(1)
        const [req] = seen
        expect(req!.method).toBe("POST")
        expect(req!.path).toBe("/v1/job/tessera/scale")
        expect(req!.query).toEqual({})
        expect(req!.headers["x-nomad-token"]).toBe("secret-token")
        expect(req!.headers["content-type"]).toMatch(/^application\/json/)
        expect(req!.body).toEqual({
          Count: 5,
          Target: { Group: "region" },
          Message: "players: 130 need 4 instances",
          Meta: { source: "tessera-scheduler", decision: "ScaleUp" }
        })
        expect(desired.region).toBe(5)
      })
    ))

  it.live("current GETs the scale status and returns the group's Desired", () =>
    withActuator({ token: "t" }, (nomad) => Effect.all([nomad.current("region"), nomad.current("gateway")])).pipe(
      Effect.map((counts) => {
        expect(counts).toEqual([3, 2])
        expect(seen.map((s) => [s.method, s.path, s.headers["x-nomad-token"]])).toEqual([
          ["GET", "/v1/job/tessera/scale", "t"],
          ["GET", "/v1/job/tessera/scale", "t"]
        ])
      })
    ))

  it.live("scale then current round-trips through the server", () =>
    withActuator({}, (nomad) => nomad.scale("gateway", 7, "more").pipe(Effect.zipRight(nomad.current("gateway")))).pipe(
      Effect.map((n) => expect(n).toBe(7))
    ))

  it.live("sends the namespace as a query parameter, and no token header without a token", () =>
    withActuator({ namespace: "games" }, (nomad) => Effect.all([nomad.current("region"), nomad.scale("region", 1, "fewer")])).pipe(
      Effect.map(() => {
        expect(seen.map((s) => s.query)).toEqual([{ namespace: "games" }, { namespace: "games" }])
        for (const s of seen) expect(s.headers["x-nomad-token"]).toBeUndefined()
      })
    ))

  it.live("escapes the job id in the path", () =>
    withActuator({ job: "a job/x" }, (nomad) => Effect.either(nomad.current("region"))).pipe(
      Effect.map((e) => {
        expect(seen[0]!.path).toBe("/v1/job/a%20job%2Fx/scale")
        expect(failure(e)).toMatchObject({ reason: "Status", status: 404 })
      })
    ))

  it.live("retries a 500, then succeeds", () => {
    answers = [{ status: 500, text: "rpc error: No cluster leader" }, { status: 503, text: "" }]
    return withActuator({}, (nomad) => nomad.scale("region", 4, "retry me")).pipe(
      Effect.map(() => {
        expect(seen).toHaveLength(3)
        for (const s of seen) expect(s.body).toMatchObject({ Count: 4, Target: { Group: "region" } })
        expect(desired.region).toBe(4)
      })
    )
  })

  it.live("gives up after the retries on persistent 5xx, with the last status and body", () => {
    answers = Array.from({ length: 10 }, () => ({ status: 502, text: "bad gateway" }))
    return withActuator({ retries: 2 }, (nomad) => Effect.either(nomad.current("region"))).pipe(
      Effect.map((e) => {
        expect(seen).toHaveLength(3)
        const err = failure(e)
        expect(err).toBeInstanceOf(NomadError)
        expect(err).toMatchObject({ _tag: "NomadError", reason: "Status", status: 502 })
        expect(err.message).toBe("GET /v1/job/tessera/scale answered 502: bad gateway")
      })
    )
  })

  it.live("does not retry a 403, and surfaces the status", () => {
    answers = [{ status: 403, text: "Permission denied" }]
    return withActuator({ token: "wrong" }, (nomad) => Effect.either(nomad.scale("region", 9, "nope"))).pipe(
      Effect.map((e) => {
        expect(seen).toHaveLength(1)
        const err = failure(e)
        expect(err).toMatchObject({ reason: "Status", status: 403 })
        expect(err.message).toContain("Permission denied")
        expect(desired.region).toBe(3)
      })
    )
  })

  it.live("does not retry a 400 (e.g. an active deployment)", () => {
    answers = [{ status: 400, text: "job scaling blocked due to active deployment" }]
    return withActuator({}, (nomad) => Effect.either(nomad.scale("region", 9, "nope"))).pipe(
      Effect.map((e) => {
        expect(seen).toHaveLength(1)
        expect(failure(e)).toMatchObject({ reason: "Status", status: 400 })
      })
    )
  })

  it.live("retries a 429 like a 5xx", () => {
    answers = [{ status: 429, text: "rate limited" }]
    return withActuator({}, (nomad) => nomad.current("region")).pipe(
      Effect.map((n) => {
        expect(n).toBe(3)
        expect(seen).toHaveLength(2)
      })
    )
  })

  it.live("a server that never answers: NomadError Timeout after every attempt timed out", () => {
    answers = ["hang", "hang", "hang"]
    return withActuator({ timeoutMs: 150, retries: 2 }, (nomad) => Effect.either(nomad.scale("region", 2, "slow"))).pipe(
      Effect.map((e) => {
        expect(seen).toHaveLength(3)
        const err = failure(e)
        expect(err).toMatchObject({ reason: "Timeout", status: null })
        expect(err.message).toBe("POST /v1/job/tessera/scale: no answer within 150 ms")
      })
    )
  })

  it.live("a timeout is retried and a later answer wins", () => {
    answers = ["hang"]
    return withActuator({ timeoutMs: 150, retries: 2 }, (nomad) => nomad.current("gateway")).pipe(
      Effect.map((n) => {
        expect(n).toBe(2)
        expect(seen).toHaveLength(2)
      })
    )
  })

  it.live("connection refused: NomadError Transport after the retries", () =>
    Effect.gen(function*() {
      // A port that was just free: listen, note it, close.
      const closed = Http.createServer()
      yield* Effect.promise(() => new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve)))
      const port = (closed.address() as AddressInfo).port
      yield* Effect.promise(() => new Promise<void>((resolve) => closed.close(() => resolve())))
      const e = yield* withActuator({ address: `http://127.0.0.1:${port}`, retries: 2 }, (nomad) => Effect.either(nomad.current("region")))
      expect(failure(e)).toMatchObject({ reason: "Transport", status: null })
    }))

  it.live("an unknown task group is a NomadError naming the groups there are", () =>
    withActuator({}, (nomad) => Effect.either(nomad.current("nope"))).pipe(
      Effect.map((e) => {
        const err = failure(e)
        expect(err).toMatchObject({ reason: "UnknownGroup", status: null })
        expect(err.message).toBe(`job "tessera" has no task group "nope" (has: gateway, region)`)
        expect(seen).toHaveLength(1)
      })
    ))

  it.live("an answer that is not a scale status is a Decode error, not retried", () => {
    answers = [{ status: 200, json: { JobID: "tessera", TaskGroups: { region: { Desired: "three" } } } }]
    return withActuator({}, (nomad) => Effect.either(nomad.current("region"))).pipe(
      Effect.map((e) => {
        expect(failure(e)).toMatchObject({ reason: "Decode", status: 200 })
        expect(seen).toHaveLength(1)
      })
    )
  })

  it.live("a negative or fractional count is refused before sending", () =>
    withActuator({}, (nomad) => Effect.all([Effect.either(nomad.scale("region", -1, "x")), Effect.either(nomad.scale("region", 1.5, "x"))])).pipe(
      Effect.map(([a, b]) => {
        expect(failure(a)).toMatchObject({ reason: "Invalid" })
        expect(failure(b)).toMatchObject({ reason: "Invalid" })
        expect(seen).toHaveLength(0)
      })
    ))
})
