import { Schema } from "effect"
import { ErrorCode } from "./Opcodes.js"

/**
 * The error that crosses entity and RPC boundaries and ends up in a client's
 * Error frame: a protocol error code plus a human-readable message.
 */
export class GameError extends Schema.TaggedError<GameError>()("GameError", {
  code: Schema.Literal(...Object.values(ErrorCode)),
  message: Schema.String
}) {}
