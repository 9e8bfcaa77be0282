import type { InputBuffer } from "./InputBuffer.js"

/**
 * The replaceable game logic of a region. Implementations are pure: no IO,
 * no clocks, no randomness except through their arguments, so a step is
 * deterministic and table-testable.
 */

export interface SimEntity {
  readonly id: number
  readonly playerId: string
  x: number
  y: number
  z: number
  vx: number
  vy: number
  vz: number
  /** Last input seq applied (acked to the client in every cell snapshot). */
  lastSeq: number
  buttons: number
}

export interface WorldState {
  /** Owned by the caller (see `advanceWorld`); `step` never changes it. */
  tick: number
  readonly entities: Map<number, SimEntity>
}

export interface GameLogic {
  readonly name: string
  /** Where a newly joined player appears (no stored position). */
  spawnPoint(playerId: string, world: WorldState): { x: number; y: number; z: number }
  /**
   * Applies the tick's inputs (arrival order) and advances the world by dt
   * seconds. Mutates `world` in place; no IO, no clocks, no randomness except
   * through its arguments, so it is deterministic and table-testable.
   */
  step(world: WorldState, inputs: InputBuffer, dt: number): void
}

/**
 * Creates an entity with every field initialised in one fixed order, so all
 * entities share one hidden class and the hot loops stay monomorphic. Create
 * every SimEntity through this. `lastSeq` starts at 0: clients number their
 * inputs from 1 (an input with seq 0 is treated as already applied).
 */
export const makeSimEntity = (
  id: number,
  playerId: string,
  x: number,
  y: number,
  z: number,
  lastSeq = 0
): SimEntity => ({ id, playerId, x, y, z, vx: 0, vy: 0, vz: 0, lastSeq, buttons: 0 })

export const makeWorldState = (tick = 0): WorldState => ({ tick, entities: new Map() })

/** One simulation tick: `logic.step` then `world.tick += 1`. The one place the tick counter moves. */
export const advanceWorld = (logic: GameLogic, world: WorldState, inputs: InputBuffer, dt: number): void => {
  logic.step(world, inputs, dt)
  world.tick += 1
}
