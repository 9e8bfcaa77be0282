import { Effect, Exit } from "effect"
import type { HttpResponse, TemplatedApp } from "uWebSockets.js"
import type { Readiness } from "../cluster/Readiness.js"
import type { TesseraConfig } from "../config/TesseraConfig.js"
import * as Metrics from "../observability/Metrics.js"
import type { PlayerRepository } from "../storage/PlayerRepository.js"
import type { Presence } from "../storage/redis/Presence.js"
import type { Auth } from "./Auth.js"
import { takeAsPromise } from "./IpRateLimits.js"
import type { SharedRateLimiter } from "./RateLimiterRedis.js"

export interface HttpDeps {
  readonly config: TesseraConfig
  readonly auth: Auth["Type"]
  readonly players: PlayerRepository["Type"]
  readonly readiness: Readiness["Type"]
  /** Guest sign-ins per IP (shared by every gateway when Redis is on). */
  readonly authLimiter: SharedRateLimiter["Type"]
  readonly presence: Presence["Type"]
  readonly run: <A, E>(effect: Effect.Effect<A, E>, onExit: (exit: Exit.Exit<A, E>) => void) => void
}

/** Bodies above this are refused before they are buffered. */
const MAX_BODY_BYTES = 4096

export const clientIp = (res: HttpResponse): string => Buffer.from(res.getRemoteAddressAsText()).toString()

export const json = (res: HttpResponse, status: string, body: unknown): void => {
  res.cork(() => {
    res.writeStatus(status).writeHeader("content-type", "application/json").end(JSON.stringify(body))
  })
}

const error = (res: HttpResponse, status: string, code: string, message: string): void =>
  json(res, status, { error: { code, message } })

/** Reads a JSON body with a size limit (an empty body reads as {}); calls back once with the value or an error message. */
export const readJson = (res: HttpResponse, onBody: (body: unknown) => void, onError: (message: string) => void): void => {
  const chunks: Array<Buffer> = []
  let size = 0
  let done = false
  res.onData((chunk, isLast) => {
    if (done) return
    size += chunk.byteLength
    if (size > MAX_BODY_BYTES) {
      done = true
      return onError(`body exceeds ${MAX_BODY_BYTES} bytes`)
    }
    chunks.push(Buffer.from(chunk.slice(0)))
    if (!isLast) return
    done = true
    const text = Buffer.concat(chunks).toString("utf8")
    let value: unknown
    try {
      value = text.trim() === "" ? {} : JSON.parse(text)
    } catch {
      return onError("body is not valid JSON")
    }
    onBody(value)
  })
}

interface GuestRequest {
  readonly deviceId: string | undefined
  readonly name: string | undefined
}

const parseGuestRequest = (body: unknown): GuestRequest | string => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "body must be a JSON object"
  const { deviceId, name, ...rest } = body as Record<string, unknown>
  const unknownKeys = Object.keys(rest)
  if (unknownKeys.length > 0) return `unknown field "${unknownKeys[0]}" (allowed: deviceId, name)`
  if (deviceId !== undefined && (typeof deviceId !== "string" || deviceId.length < 1 || deviceId.length > 128)) {
    return "deviceId must be a string of 1..128 chars"
  }
  if (name !== undefined && (typeof name !== "string" || !/^[\p{L}\p{N} _.-]{1,32}$/u.test(name))) {
    return "name must be 1..32 letters, digits, spaces, _ . or -"
  }
  return { deviceId: deviceId as string | undefined, name: name as string | undefined }
}

/** Operations endpoints every runner serves: health, readiness, metrics. */
export const installOpsApi = (app: TemplatedApp, deps: Pick<HttpDeps, "readiness" | "run">): void => {
  app.get("/health", (res) => {
    json(res, "200 OK", { status: "ok" })
  })

  app.get("/ready", (res) => {
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    deps.run(deps.readiness.check, (exit) => {
      if (aborted) return
      if (Exit.isSuccess(exit)) json(res, exit.value.ready ? "200 OK" : "503 Service Unavailable", exit.value)
      else json(res, "503 Service Unavailable", { ready: false, checks: { readiness: "check failed" } })
    })
  })

  app.get("/metrics", (res) => {
    const body = Metrics.renderPrometheus()
    res.cork(() => {
      res.writeStatus("200 OK").writeHeader("content-type", Metrics.contentType).end(body)
    })
  })

}

/** The client API of a gateway: guest authentication. */
export const installClientApi = (app: TemplatedApp, deps: HttpDeps): void => {
  // Who is online, per experience, across every gateway (presence is shared through Redis).
  app.get("/v1/online", (res) => {
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    const ids = deps.config.experiences.map((e) => e.id)
    const counts = Effect.all({
      total: deps.presence.total(),
      experiences: Effect.forEach(ids, (id) => deps.presence.onlineCount(id))
    })
    deps.run(counts, (exit) => {
      if (aborted) return
      if (Exit.isFailure(exit)) return error(res, "503 Service Unavailable", "presence", "presence unavailable")
      const experiences = Object.fromEntries(ids.map((id, i) => [id, exit.value.experiences[i]!]))
      json(res, "200 OK", { total: exit.value.total, experiences })
    })
  })

  app.post("/v1/auth/guest", (res) => {
    let aborted = false
    res.onAborted(() => {
      aborted = true
    })
    // The body must be read from now on (uWS drops what arrives with no onData), so the per-IP
    // take (a Redis round trip across gateways) runs alongside; a limited client gets its 429 at once.
    const allowed = takeAsPromise(deps.run, deps.authLimiter, clientIp(res)).then((ok) => {
      if (!ok && !aborted) {
        Metrics.authTotal.limited.inc()
        error(res, "429 Too Many Requests", "rate_limited", "too many sign-ins from this address; retry later")
      }
      return ok
    })
    readJson(
      res,
      (body) => void allowed.then((ok) => {
        if (!ok || aborted) return
        const request = parseGuestRequest(body)
        if (typeof request === "string") {
          Metrics.authTotal.rejected.inc()
          return error(res, "400 Bad Request", "bad_request", request)
        }
        deps.run(deps.players.findOrCreateGuest(request.deviceId, request.name), (exit) => {
          if (aborted) return
          if (Exit.isFailure(exit)) return error(res, "503 Service Unavailable", "storage", "player storage unavailable")
          const player = exit.value
          deps.auth.issue({ playerId: player.id, name: player.name }).then(({ expiresAt, token }) => {
            if (aborted) return
            Metrics.authTotal.ok.inc()
            json(res, "200 OK", { playerId: player.id, name: player.name, token, expiresAt })
          })
        })
      }),
      (message) => void allowed.then((ok) => {
        if (!ok || aborted) return
        Metrics.authTotal.rejected.inc()
        error(res, "400 Bad Request", "bad_request", message)
      })
    )
  })

}

/** Installed last: everything else is a JSON 404. */
export const installNotFound = (app: TemplatedApp): void => {
  app.any("/*", (res, req) => {
    error(res, "404 Not Found", "not_found", `no route for ${req.getMethod().toUpperCase()} ${req.getUrl()}`)
  })
}
