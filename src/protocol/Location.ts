import { Schema } from "effect"

/** Where a player is: which world instance and region, and its entity there. */
export const Location = Schema.Struct({
  experienceId: Schema.String,
  worldId: Schema.String,
  regionId: Schema.String
})
export type Location = typeof Location.Type

/** What a gateway needs after a join: enough for the Joined frame and the cell subscriptions. */
export const JoinedInfo = Schema.Struct({
  experienceId: Schema.String,
  worldId: Schema.String,
  regionId: Schema.String,
  entityId: Schema.Number,
  x: Schema.Number,
  y: Schema.Number,
  z: Schema.Number,
  cellKey: Schema.String,
  tickRate: Schema.Number,
  cellSize: Schema.Number,
  interestRadius: Schema.Number
})
export type JoinedInfo = typeof JoinedInfo.Type
