import type { SimEntity } from "./GameLogic.js"

/**
 * Interest management: the region's space is cut into cubic cells of
 * `cellSize` metres. Each cell is one pub/sub topic (its key, e.g. "3,0,-2");
 * a client subscribes to the (2r+1)^3 cells around its own.
 *
 * Cells are centred on the origin: cell (cx, cy, cz) covers
 * [(cx-0.5)*cellSize, (cx+0.5)*cellSize) on x, likewise y, z. Spawn points
 * sit around the origin, so a fresh crowd starts in one cell, not astride
 * the corner of eight.
 */

export const cellCoord = (v: number, cellSize: number): number => {
  const c = Math.floor(v / cellSize + 0.5)
  return c === 0 ? 0 : c // no "-0" keys
}

export const cellKey = (cx: number, cy: number, cz: number): string => `${cx},${cy},${cz}`

const INT_RE = /^-?\d+$/

/** Parses "cx,cy,cz"; throws an Error on anything else. */
export const parseCellKey = (key: string): readonly [cx: number, cy: number, cz: number] => {
  const parts = key.split(",")
  if (parts.length !== 3 || !INT_RE.test(parts[0]!) || !INT_RE.test(parts[1]!) || !INT_RE.test(parts[2]!)) {
    throw new Error(`not a cell key: ${JSON.stringify(key)} (expected "cx,cy,cz" integers)`)
  }
  return [Number(parts[0]), Number(parts[1]), Number(parts[2])]
}

const checkRadius = (radius: number): void => {
  if (!(Number.isInteger(radius) && radius >= 0)) {
    throw new Error(`interest radius must be an integer >= 0, got ${radius}`)
  }
}

/** The (2r+1)^3 cell keys around `key` (itself included), x-major then y then z. */
export const cellsAround = (key: string, radius: number): Array<string> => {
  checkRadius(radius)
  const [cx, cy, cz] = parseCellKey(key)
  const out: Array<string> = []
  for (let x = cx - radius; x <= cx + radius; x++) {
    for (let y = cy - radius; y <= cy + radius; y++) {
      for (let z = cz - radius; z <= cz + radius; z++) out.push(cellKey(x, y, z))
    }
  }
  return out
}

export interface NeighbourhoodDiff {
  readonly subscribe: Array<string>
  readonly unsubscribe: Array<string>
}

/** Cells of `center`'s neighbourhood that are not within Chebyshev distance `radius` of `other`. */
const cellsNotNear = (
  center: readonly [number, number, number],
  other: readonly [number, number, number] | undefined,
  radius: number
): Array<string> => {
  const [cx, cy, cz] = center
  const out: Array<string> = []
  for (let x = cx - radius; x <= cx + radius; x++) {
    for (let y = cy - radius; y <= cy + radius; y++) {
      for (let z = cz - radius; z <= cz + radius; z++) {
        if (
          other === undefined ||
          Math.abs(x - other[0]) > radius ||
          Math.abs(y - other[1]) > radius ||
          Math.abs(z - other[2]) > radius
        ) {
          out.push(cellKey(x, y, z))
        }
      }
    }
  }
  return out
}

/**
 * Topic changes for an entity moving from cell `fromKey` to `toKey`
 * (`undefined` = not in the region: joining or leaving).
 */
export const neighbourhoodDiff = (
  fromKey: string | undefined,
  toKey: string | undefined,
  radius: number
): NeighbourhoodDiff => {
  checkRadius(radius)
  if (fromKey === toKey) return { subscribe: [], unsubscribe: [] }
  const from = fromKey === undefined ? undefined : parseCellKey(fromKey)
  const to = toKey === undefined ? undefined : parseCellKey(toKey)
  return {
    subscribe: to === undefined ? [] : cellsNotNear(to, from, radius),
    unsubscribe: from === undefined ? [] : cellsNotNear(from, to, radius)
  }
}

/** An entity entered a cell (`from` is undefined on its first placement). */
export interface CellChange {
  readonly entityId: number
  readonly playerId: string
  readonly from: string | undefined
  readonly to: string
}

interface Slot {
  entity: SimEntity
  cx: number
  cy: number
  cz: number
  key: string
  members: Array<SimEntity>
  index: number
}

const MAX_POOLED_ARRAYS = 256
const EMPTY: ReadonlyArray<SimEntity> = Object.freeze([])

/**
 * Incremental cell membership. Call `place` for every entity after each
 * step: an entity that stays in its cell costs three divisions and a Map
 * lookup, no allocation; a cell change costs one key string, one CellChange
 * and O(1) array edits (swap-remove). Empty cells are dropped from `cells()`
 * immediately; their members arrays are pooled and reused.
 */
export class InterestGrid {
  readonly cellSize: number
  private readonly byCell = new Map<string, Array<SimEntity>>()
  private readonly slots = new Map<number, Slot>()
  private readonly pool: Array<Array<SimEntity>> = []

  constructor(cellSize: number) {
    if (!(Number.isFinite(cellSize) && cellSize > 0)) {
      throw new Error(`cellSize must be a finite number > 0, got ${cellSize}`)
    }
    this.cellSize = cellSize
  }

  /** Number of placed entities. */
  get size(): number {
    return this.slots.size
  }

  /**
   * Puts the entity in the cell of its current position. Returns the change
   * when the entity entered a new cell (or was placed for the first time),
   * otherwise undefined.
   */
  place(entity: SimEntity): CellChange | undefined {
    const s = this.cellSize
    const cx = cellCoord(entity.x, s)
    const cy = cellCoord(entity.y, s)
    const cz = cellCoord(entity.z, s)
    const slot = this.slots.get(entity.id)
    if (slot !== undefined) {
      if (slot.cx === cx && slot.cy === cy && slot.cz === cz) {
        if (slot.entity !== entity) {
          slot.entity = entity
          slot.members[slot.index] = entity
        }
        return undefined
      }
      const from = slot.key
      this.detach(slot)
      const key = cellKey(cx, cy, cz)
      const members = this.membersOf(key)
      slot.entity = entity
      slot.cx = cx
      slot.cy = cy
      slot.cz = cz
      slot.key = key
      slot.members = members
      slot.index = members.length
      members.push(entity)
      return { entityId: entity.id, playerId: entity.playerId, from, to: key }
    }
    const key = cellKey(cx, cy, cz)
    const members = this.membersOf(key)
    this.slots.set(entity.id, { entity, cx, cy, cz, key, members, index: members.length })
    members.push(entity)
    return { entityId: entity.id, playerId: entity.playerId, from: undefined, to: key }
  }

  /** Removes the entity; returns the key of the cell it was in. */
  remove(entityId: number): string | undefined {
    const slot = this.slots.get(entityId)
    if (slot === undefined) return undefined
    this.detach(slot)
    this.slots.delete(entityId)
    return slot.key
  }

  /** The key of the entity's cell, if placed. */
  cellOf(entityId: number): string | undefined {
    return this.slots.get(entityId)?.key
  }

  /**
   * The non-empty cells: key -> members (unordered). Live view — do not
   * mutate, and do not place/remove while iterating.
   */
  cells(): ReadonlyMap<string, ReadonlyArray<SimEntity>> {
    return this.byCell
  }

  /** Members of one cell (empty array if the cell is empty). */
  membersOfCell(key: string): ReadonlyArray<SimEntity> {
    return this.byCell.get(key) ?? EMPTY
  }

  private membersOf(key: string): Array<SimEntity> {
    let members = this.byCell.get(key)
    if (members === undefined) {
      members = this.pool.pop() ?? []
      this.byCell.set(key, members)
    }
    return members
  }

  /** Swap-removes the slot's entity from its cell; drops the cell when it empties. */
  private detach(slot: Slot): void {
    const members = slot.members
    const last = members.length - 1
    if (slot.index !== last) {
      const moved = members[last]!
      members[slot.index] = moved
      this.slots.get(moved.id)!.index = slot.index
    }
    members.pop()
    if (last === 0) {
      this.byCell.delete(slot.key)
      if (this.pool.length < MAX_POOLED_ARRAYS) this.pool.push(members)
    }
  }
}
