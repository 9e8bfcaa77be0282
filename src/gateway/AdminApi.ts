import type { Sharding } from "@effect/cluster"
import { Cause, Duration, Effect, Exit, Fiber, Runtime, type Scope, Stream } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import type { HttpRequest, HttpResponse, TemplatedApp } from "uWebSockets.js"
import { AppConfig } from "../config/AppConfig.js"
import { type Actor, adminActor, type ControlEnvelope } from "../control/ControlEvent.js"
import { ControlError, httpStatusOf } from "../control/ControlError.js"
import { ControlEvents } from "../control/ControlEvents.js"
import { processOrigin } from "../control/ControlOrigin.js"
import * as Sse from "../control/Sse.js"
import { SCHEDULER_ID, SchedulerEntity } from "../scheduler/SchedulerEntity.js"
import { AuditLogRepository } from "../storage/AuditLogRepository.js"
import { readJson } from "./HttpApi.js"

/**
 * The Control API (issue 5): admin operations over HTTP on every gateway,
 * under /v1/admin/, JSON in and out, each request authenticated with
 * `Authorization: Bearer <admin.key>`.
 *
 *   GET    /v1/admin/servers[?experience=ID][&region=ID] instances, open-world regions, runners (region: an
 *                                                        instance, a region, or every region of a world id)
 *   POST   /v1/admin/servers            {"experience"}   spawn an empty instance            -> 201
 *   DELETE /v1/admin/servers/:worldId[?reason=&move=auto|none|WORLD]  terminate an instance
 *   GET    /v1/admin/servers/:worldId/sessions           the players in an instance
 *   POST   /v1/admin/route              {"playerId","worldId"}  move a player to an instance
 *   POST   /v1/admin/runners/:runner/drain[?reason=]     drain a runner (host:port): it hands its shards
 *                                                         over and exits as on SIGTERM (404: not registered)
 *   GET    /v1/admin/events[?history=1][&since=SEQ]      live SSE stream (Last-Event-ID), or JSON history
 *   GET    /v1/admin/audit[?limit=N][&before=ID]         the audit log, newest first
 *
 * Errors: `{"error":{"code","message"}}` with 401 (no or wrong key), 403
 * (admin API disabled: admin.key is empty), 400 (bad input), 404 (unknown
 * world, player or experience), 409 (full, already there), 503 (scheduler
 * unreachable).
 *
 * Operations go to the scheduler entity (a cluster singleton, maybe in
 * another process), which publishes their events with the admin's actor
 * (`admin:<key id>`, the key id being a short hash of the key, never the key).
 *
 * The event stream: the scheduler keeps the cluster's event history (its
 * process's ControlEvents); this gateway polls its `Events` RPC every 250 ms
 * and writes new envelopes as SSE frames whose `id` is the scheduler's seq,
 * so `Last-Event-ID` resumes. When the scheduler runs in another process
 * than this gateway, this gateway's own events (its ControlEvents, e.g.
 * player connects) are added live, as frames without an id (not resumable).
 * A scheduler restart or failover (a new origin) replays its whole history.
 */

const CALL_TIMEOUT = Duration.seconds(10)
/** Terminate waits for every player's session (5 s each at most, 8 at a time). */
const TERMINATE_TIMEOUT = Duration.seconds(60)
const POLL_INTERVAL = Duration.millis(250)
const KEEP_ALIVE_MS = 15_000
const SSE_RETRY_MS = 2000
const MAX_AUDIT_LIMIT = 1000
const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/
/** Region ids of open worlds have slashes: `<world>/<level>/<x>/<y>/<z>`. */
const REGION_PATTERN = /^[A-Za-z0-9_.:/-]{1,128}$/
const MAX_REASON_LENGTH = 200

type Run = <A, E>(effect: Effect.Effect<A, E>, onExit: (exit: Exit.Exit<A, E>) => void) => void

/** `admin:<key id>`: the first 12 hex digits of the key's SHA-256 (identifies the key, never reveals it). */
export const adminKeyId = (key: string): string => createHash("sha256").update(key).digest("hex").slice(0, 12)

const digest = (text: string): Buffer => createHash("sha256").update(text).digest()

const sendJson = (res: HttpResponse, status: string, body: unknown): void => {
  res.cork(() => {
    res.writeStatus(status).writeHeader("content-type", "application/json").writeHeader("cache-control", "no-store")
      .end(JSON.stringify(body))
  })
}

const sendError = (res: HttpResponse, status: string, code: string, message: string): void =>
  sendJson(res, status, { error: { code, message } })

const badRequest = (res: HttpResponse, message: string): void => sendError(res, "400 Bad Request", "bad_request", message)

/** A query parameter, or undefined when absent or empty. */
const query = (req: HttpRequest, key: string): string | undefined => {
  const value = req.getQuery(key) as string | undefined
  return value === undefined || value === "" ? undefined : value
}

/** A path parameter, URL-decoded; undefined when it is not valid percent-encoding. */
const param = (req: HttpRequest, index: number): string | undefined => {
  const raw = req.getParameter(index) as string | undefined
  if (raw === undefined) return undefined
  try {
    return decodeURIComponent(raw)
  } catch {
    return undefined
  }
}

const checkId = (what: string, value: unknown): string | { readonly error: string } =>
  typeof value === "string" && ID_PATTERN.test(value)
    ? value
    : { error: `${what} must be 1..128 of A-Z a-z 0-9 _ . : -` }

/** A non-negative integer from a query parameter, or an error message. */
const intParam = (what: string, raw: string | undefined, min: number, max: number): number | undefined | { readonly error: string } => {
  if (raw === undefined) return undefined
  if (!/^\d{1,15}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    return { error: `${what} must be an integer from ${min} to ${max}` }
  }
  return Number(raw)
}

/** Reads a JSON object body (the shared size limit); calls back once. */
const readJsonObject = (
  res: HttpResponse,
  onBody: (body: Readonly<Record<string, unknown>>) => void,
  onError: (message: string) => void
): void =>
  readJson(res, (value) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return onError("body must be a JSON object")
    onBody(value as Readonly<Record<string, unknown>>)
  }, onError)

/** Refuses unknown fields with a clear message; undefined when every key is allowed. */
const unknownField = (body: Readonly<Record<string, unknown>>, allowed: ReadonlyArray<string>): string | undefined => {
  const extra = Object.keys(body).find((k) => !allowed.includes(k))
  return extra === undefined ? undefined : `unknown field "${extra}" (allowed: ${allowed.join(", ")})`
}

/**
 * Installs the /v1/admin/ routes on the gateway's uWS app (before its
 * catch-all 404). Open SSE streams are ended when the gateway's scope closes.
 */
export const installAdminApi = (
  app: TemplatedApp,
  run: Run
): Effect.Effect<void, never, AppConfig | ControlEvents | AuditLogRepository | Sharding.Sharding | Scope.Scope> =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    const events = yield* ControlEvents
    const audit = yield* AuditLogRepository
    const scheduler = (yield* SchedulerEntity.client)(SCHEDULER_ID)
    const runFork = Runtime.runFork(yield* Effect.runtime<never>())
    const key = config.admin.key
    const keyDigest = key === "" ? undefined : digest(key)
    const actor: Actor = adminActor(key === "" ? "none" : adminKeyId(key))
    const streams = new Set<Fiber.RuntimeFiber<void, never>>()
    yield* Effect.addFinalizer(() => Fiber.interruptAll(streams))

    /**
     * Checks the Authorization header (synchronously: uWS requests must be
     * read before any callback returns); answers 401/403 and returns false
     * when the request may not go on.
     */
    const authorized = (res: HttpResponse, req: HttpRequest): boolean => {
      const header = req.getHeader("authorization")
      if (keyDigest === undefined) {
        sendError(
          res,
          "403 Forbidden",
          "admin_disabled",
          "the admin API is disabled: set admin.key (TESSERA_ADMIN_KEY) on the server"
        )
        return false
      }
      const match = /^Bearer (.+)$/i.exec(header.trim())
      // Constant time: equal-length digests, compared with timingSafeEqual.
      if (match === null || !timingSafeEqual(digest(match[1]!), keyDigest)) {
        sendError(
          res,
          "401 Unauthorized",
          "unauthorized",
          header === "" ? "the admin key is required (Authorization: Bearer <key>)" : "wrong admin key"
        )
        return false
      }
      return true
    }

    /** Runs a scheduler call and answers with its result (or its ControlError's status). */
    const answer = <A>(
      res: HttpResponse,
      state: { aborted: boolean },
      effect: Effect.Effect<A, unknown>,
      ok: string = "200 OK",
      timeout: Duration.Duration = CALL_TIMEOUT
    ): void =>
      run(Effect.timeout(effect, timeout), (exit) => {
        if (state.aborted) return
        if (Exit.isSuccess(exit)) return sendJson(res, ok, exit.value)
        const failure = Cause.failureOption(exit.cause)
        if (failure._tag === "Some" && failure.value instanceof ControlError) {
          return sendError(res, httpStatusOf(failure.value.code), failure.value.code, failure.value.message)
        }
        sendError(res, "503 Service Unavailable", "unavailable", "the scheduler did not answer; try again")
      })

    /** The common start of every admin handler: abort tracking and auth. */
    const begin = (res: HttpResponse, req: HttpRequest): { aborted: boolean } | undefined => {
      const state = { aborted: false }
      res.onAborted(() => {
        state.aborted = true
      })
      return authorized(res, req) ? state : undefined
    }

    // ---- servers ------------------------------------------------------------------------

    app.get("/v1/admin/servers", (res, req) => {
      const experience = query(req, "experience")
      const region = query(req, "region")
      const state = begin(res, req)
      if (state === undefined) return
      if (experience !== undefined) {
        const checked = checkId("experience", experience)
        if (typeof checked !== "string") return badRequest(res, checked.error)
      }
      if (region !== undefined && !REGION_PATTERN.test(region)) {
        return badRequest(res, "region must be 1..128 of A-Z a-z 0-9 _ . : - / (an instance, a world or a region id)")
      }
      answer(
        res,
        state,
        scheduler.ListServers({
          ...(experience === undefined ? {} : { experienceId: experience }),
          ...(region === undefined ? {} : { region })
        })
      )
    })

    app.post("/v1/admin/servers", (res, req) => {
      const state = begin(res, req)
      if (state === undefined) return
      readJsonObject(
        res,
        (body) => {
          if (state.aborted) return
          const extra = unknownField(body, ["experience"])
          if (extra !== undefined) return badRequest(res, extra)
          if (body["experience"] === undefined) return badRequest(res, "experience is required, e.g. {\"experience\":\"arena\"}")
          const experience = checkId("experience", body["experience"])
          if (typeof experience !== "string") return badRequest(res, experience.error)
          answer(res, state, scheduler.Spawn({ experienceId: experience, actor }), "201 Created")
        },
        (message) => {
          if (!state.aborted) badRequest(res, message)
        }
      )
    })

    app.del("/v1/admin/servers/:worldId", (res, req) => {
      const worldId = checkId("worldId", param(req, 0))
      const reason = query(req, "reason") ?? "terminated by an admin"
      const move = query(req, "move") ?? "auto"
      const state = begin(res, req)
      if (state === undefined) return
      if (typeof worldId !== "string") return badRequest(res, worldId.error)
      if (reason.length > MAX_REASON_LENGTH || /[\u0000-\u001f]/.test(reason)) {
        return badRequest(res, `reason must be at most ${MAX_REASON_LENGTH} characters, without control characters`)
      }
      if (move !== "auto" && move !== "none" && typeof checkId("move", move) !== "string") {
        return badRequest(res, "move must be auto, none, or the world id of another instance of the experience")
      }
      answer(res, state, scheduler.Terminate({ worldId, reason, moveTo: move, actor }), "200 OK", TERMINATE_TIMEOUT)
    })

    app.get("/v1/admin/servers/:worldId/sessions", (res, req) => {
      const worldId = checkId("worldId", param(req, 0))
      const state = begin(res, req)
      if (state === undefined) return
      if (typeof worldId !== "string") return badRequest(res, worldId.error)
      answer(res, state, scheduler.ListSessions({ worldId }))
    })

    // ---- players and runners ----------------------------------------------------------------

    app.post("/v1/admin/route", (res, req) => {
      const state = begin(res, req)
      if (state === undefined) return
      readJsonObject(
        res,
        (body) => {
          if (state.aborted) return
          const extra = unknownField(body, ["playerId", "worldId"])
          if (extra !== undefined) return badRequest(res, extra)
          const playerId = checkId("playerId", body["playerId"])
          if (typeof playerId !== "string") return badRequest(res, playerId.error)
          const worldId = checkId("worldId", body["worldId"])
          if (typeof worldId !== "string") return badRequest(res, worldId.error)
          answer(res, state, scheduler.Route({ playerId, worldId, actor }))
        },
        (message) => {
          if (!state.aborted) badRequest(res, message)
        }
      )
    })

    app.post("/v1/admin/runners/:runner/drain", (res, req) => {
      const runner = param(req, 0)
      const reason = query(req, "reason")
      const state = begin(res, req)
      if (state === undefined) return
      // A POST body is not used here, but uWS wants it read.
      res.onData(() => {})
      if (runner === undefined || runner === "") return badRequest(res, "runner is required: /v1/admin/runners/<host:port>/drain")
      if (reason !== undefined && (reason.length > MAX_REASON_LENGTH || /[\u0000-\u001f]/.test(reason))) {
        return badRequest(res, `reason must be at most ${MAX_REASON_LENGTH} characters, without control characters`)
      }
      answer(res, state, scheduler.DrainRunner(reason === undefined ? { runner, actor } : { runner, actor, reason }))
    })

    // ---- events and audit ------------------------------------------------------------------------

    app.get("/v1/admin/events", (res, req) => {
      const history = query(req, "history")
      const since = intParam("since", query(req, "since"), 0, Number.MAX_SAFE_INTEGER)
      const lastEventId = Sse.parseLastEventId(req.getHeader("last-event-id") || undefined)
      const state = begin(res, req)
      if (state === undefined) return
      if (typeof since === "object") return badRequest(res, since.error)
      if (history !== undefined && history !== "1" && history !== "0") return badRequest(res, "history must be 1 or 0")
      const from = lastEventId ?? since
      if (history === "1") return answer(res, state, historyOf(from))
      openStream(res, state, from)
    })

    app.get("/v1/admin/audit", (res, req) => {
      const limit = intParam("limit", query(req, "limit"), 1, MAX_AUDIT_LIMIT)
      const before = intParam("before", query(req, "before"), 1, Number.MAX_SAFE_INTEGER)
      const state = begin(res, req)
      if (state === undefined) return
      if (typeof limit === "object") return badRequest(res, limit.error)
      if (typeof before === "object") return badRequest(res, before.error)
      // What this process has queued is written first (one process: every event).
      const entries = events.flushAudit.pipe(
        Effect.zipRight(audit.list(limit ?? 100, before)),
        Effect.map((rows) => ({
          entries: rows.map((row) => {
            let detail: unknown = row.detail
            try {
              detail = JSON.parse(row.detail)
            } catch {
              // kept as text
            }
            return { ...row, detail }
          })
        }))
      )
      answer(res, state, entries)
    })

    // Anything else under /v1/admin/: the key first, then a 404 (before the generic catch-all).
    app.any("/v1/admin/*", (res, req) => {
      const route = `${req.getMethod().toUpperCase()} ${req.getUrl()}`
      if (begin(res, req) === undefined) return
      sendError(res, "404 Not Found", "not_found", `no admin route for ${route}`)
    })

    // ---- event stream internals ------------------------------------------------------------------

    /** The scheduler's history after `sinceSeq`, plus this gateway's own when the scheduler is elsewhere. */
    function historyOf(sinceSeq: number | undefined) {
      return Effect.gen(function*() {
        const remote = yield* scheduler.Events(sinceSeq === undefined ? {} : { sinceSeq })
        const gatewayEvents = remote.origin === processOrigin ? [] : yield* events.history()
        return { origin: remote.origin, lastSeq: remote.lastSeq, events: remote.events, gatewayEvents }
      })
    }

    function openStream(res: HttpResponse, state: { aborted: boolean }, from: number | undefined): void {
      let ended = false
      let lastWriteAt = Date.now()
      /** Writes one chunk unless the client went away; false when the stream is over. */
      const write = (text: string): boolean => {
        if (state.aborted || ended) return false
        res.cork(() => {
          res.write(text)
        })
        lastWriteAt = Date.now()
        return true
      }
      res.cork(() => {
        res.writeStatus("200 OK")
          .writeHeader("content-type", Sse.contentType)
          .writeHeader("cache-control", "no-cache")
          .writeHeader("x-accel-buffering", "no")
          .write(Sse.sseRetry(SSE_RETRY_MS))
      })

      const loop = Effect.gen(function*() {
        let origin: string | undefined
        let lastSeq = from ?? -1
        let localStarted = false
        while (!state.aborted) {
          const polled = yield* scheduler.Events(lastSeq < 0 ? {} : { sinceSeq: lastSeq }).pipe(
            Effect.timeout(CALL_TIMEOUT),
            Effect.either
          )
          if (polled._tag === "Right") {
            const reply = polled.right
            let batch: ReadonlyArray<ControlEnvelope> = reply.events
            if (lastSeq < 0) {
              // A live stream starts after what is already there.
              batch = []
              lastSeq = reply.lastSeq
            } else if (origin !== undefined && reply.origin !== origin) {
              // The scheduler restarted or failed over: its seqs start again; replay its history.
              const all = yield* scheduler.Events({}).pipe(Effect.timeout(CALL_TIMEOUT), Effect.option)
              batch = all._tag === "Some" ? all.value.events : []
            }
            origin = reply.origin
            for (const envelope of batch) {
              if (!write(Sse.sseFrame(envelope))) return
              lastSeq = envelope.seq
            }
            if (batch.length === 0 && reply.lastSeq < lastSeq && reply.origin === origin) lastSeq = reply.lastSeq
            if (!localStarted && reply.origin !== processOrigin) {
              // The scheduler is another process: add this gateway's own events, live, without ids.
              localStarted = true
              const local = yield* events.subscribe()
              yield* Stream.runForEach(local, (envelope) =>
                Effect.sync(() => void write(`event: ${envelope.event._tag}\ndata: ${JSON.stringify(envelope)}\n\n`))
              ).pipe(Effect.forkScoped)
            }
          } else if (Date.now() - lastWriteAt >= KEEP_ALIVE_MS) {
            if (!write(Sse.sseComment("scheduler unavailable; retrying"))) return
          }
          if (Date.now() - lastWriteAt >= KEEP_ALIVE_MS && !write(Sse.sseComment())) return
          yield* Effect.sleep(POLL_INTERVAL)
        }
      }).pipe(
        Effect.scoped,
        Effect.catchAllCause((cause) => Effect.logWarning("admin event stream failed", cause)),
        Effect.ensuring(Effect.sync(() => {
          if (!state.aborted && !ended) {
            ended = true
            res.cork(() => res.end())
          }
        }))
      )
      const fiber = runFork(loop)
      streams.add(fiber)
      fiber.addObserver(() => streams.delete(fiber))
      res.onAborted(() => {
        state.aborted = true
        ended = true
        runFork(Fiber.interrupt(fiber))
      })
    }
  })
