import { Context, Effect, Layer } from "effect"
import { jwtVerify, SignJWT } from "jose"
import { AppConfig } from "../config/AppConfig.js"

export interface PlayerClaims {
  readonly playerId: string
  readonly name: string
}

const ISSUER = "tessera"
const AUDIENCE = "tessera:ws"

/**
 * Signs and verifies player tokens (HS256 JWT). Verification is a plain
 * promise so the uWS upgrade handler can await it without an Effect fiber.
 */
export class Auth extends Context.Tag("tessera/Auth")<Auth, {
  readonly issue: (claims: PlayerClaims) => Promise<{ readonly token: string; readonly expiresAt: number }>
  /** Resolves the claims, or undefined for any invalid, expired or foreign token. */
  readonly verify: (token: string) => Promise<PlayerClaims | undefined>
}>() {
  static readonly layer: Layer.Layer<Auth, never, AppConfig> = Layer.effect(
    Auth,
    Effect.map(AppConfig, (config) => {
      const key = new TextEncoder().encode(config.auth.secret)
      const ttl = config.auth.tokenTtlSeconds
      return {
        issue: async (claims) => {
          const now = Math.floor(Date.now() / 1000)
          const token = await new SignJWT({ name: claims.name })
            .setProtectedHeader({ alg: "HS256" })
            .setSubject(claims.playerId)
            .setIssuer(ISSUER)
            .setAudience(AUDIENCE)
            .setIssuedAt(now)
            .setExpirationTime(now + ttl)
            .sign(key)
          return { token, expiresAt: (now + ttl) * 1000 }
        },
        verify: async (token) => {
          try {
            const { payload } = await jwtVerify(token, key, {
              issuer: ISSUER,
              audience: AUDIENCE,
              algorithms: ["HS256"]
            })
            if (typeof payload.sub !== "string" || typeof payload.name !== "string") return undefined
            return { playerId: payload.sub, name: payload.name }
          } catch {
            return undefined
          }
        }
      }
    })
  )
}
