import { Schema } from "effect"

/**
 * Why a Control API operation (spawn, terminate, route, drain...) was
 * refused, crossing the scheduler entity's RPC boundary to the admin HTTP
 * API, which maps `code` to the HTTP status (see `httpStatusOf`).
 */
export const ControlErrorCode = Schema.Literal("bad_request", "not_found", "conflict", "unavailable")
export type ControlErrorCode = typeof ControlErrorCode.Type

export class ControlError extends Schema.TaggedError<ControlError>()("ControlError", {
  code: ControlErrorCode,
  message: Schema.String
}) {}

/** The HTTP status line of a ControlError code. */
export const httpStatusOf = (code: ControlErrorCode): string => {
  switch (code) {
    case "bad_request":
      return "400 Bad Request"
    case "not_found":
      return "404 Not Found"
    case "conflict":
      return "409 Conflict"
    case "unavailable":
      return "503 Service Unavailable"
  }
}
