import type { GameLogic, SimEntity, WorldState } from "./GameLogic.js"
import type { InputBuffer } from "./InputBuffer.js"

export interface KinematicOptions {
  /** Metres per second at a full-length input direction. */
  readonly maxSpeed: number
  /** Entities are kept inside the cube [-worldHalfExtent, worldHalfExtent]^3. */
  readonly worldHalfExtent: number
  /** New players spawn on a disc of this radius around the origin at y = 0. */
  readonly spawnRadius: number
  /** An open world's box, when it is not the cube of worldHalfExtent. */
  readonly bounds?: { readonly minX: number; readonly minY: number; readonly minZ: number; readonly maxX: number; readonly maxY: number; readonly maxZ: number }
}

/** FNV-1a over UTF-16 code units (deterministic, platform independent). */
const fnv1a = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** murmur3's 32-bit finaliser: a second, independent-looking value from a hash. */
const fmix32 = (h: number): number => {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

const TWO_POW_32 = 4294967296

/**
 * The default game logic: every player is a point moving at a velocity set by
 * its latest input. The server is authoritative over speed — an input is a
 * direction whose length is clamped to 1, so no client can move an entity
 * faster than `maxSpeed` (no teleporting) — and over bounds.
 *
 * step(world, inputs, dt):
 *  1. inputs in arrival order; an input of an unknown entity, or with
 *     seq <= entity.lastSeq (duplicate/replay/reordered), is ignored; otherwise
 *     velocity = clamp(dir, length <= 1) * maxSpeed, lastSeq = seq,
 *     buttons = buttons. Non-finite components count as 0.
 *  2. every entity: position += velocity * dt, clamped to the world cube.
 *     Velocity persists until the entity's next accepted input.
 */
export const makeKinematicLogic = (options: KinematicOptions): GameLogic => {
  const { maxSpeed, worldHalfExtent, spawnRadius } = options
  if (!(Number.isFinite(maxSpeed) && maxSpeed >= 0)) {
    throw new Error(`kinematic logic: maxSpeed must be a finite number >= 0, got ${maxSpeed}`)
  }
  if (!(Number.isFinite(worldHalfExtent) && worldHalfExtent > 0)) {
    throw new Error(`kinematic logic: worldHalfExtent must be a finite number > 0, got ${worldHalfExtent}`)
  }
  if (!(Number.isFinite(spawnRadius) && spawnRadius >= 0)) {
    throw new Error(`kinematic logic: spawnRadius must be a finite number >= 0, got ${spawnRadius}`)
  }
  const b = options.bounds
  const loX = b?.minX ?? -worldHalfExtent
  const hiX = b?.maxX ?? worldHalfExtent
  const loY = b?.minY ?? -worldHalfExtent
  const hiY = b?.maxY ?? worldHalfExtent
  const loZ = b?.minZ ?? -worldHalfExtent
  const hiZ = b?.maxZ ?? worldHalfExtent

  const applyInputs = (entities: Map<number, SimEntity>, inputs: InputBuffer): void => {
    const n = inputs.count
    for (let i = 0; i < n; i++) {
      const e = entities.get(inputs.entityId(i))
      if (e === undefined) continue
      const seq = inputs.seq(i)
      if (seq <= e.lastSeq) continue
      let dx = inputs.dx(i)
      let dy = inputs.dy(i)
      let dz = inputs.dz(i)
      if (!Number.isFinite(dx)) dx = 0
      if (!Number.isFinite(dy)) dy = 0
      if (!Number.isFinite(dz)) dz = 0
      let len2 = dx * dx + dy * dy + dz * dz
      let scale = maxSpeed
      if (len2 > 1) {
        // Pre-scale by the largest component so huge vectors cannot overflow to Infinity.
        const m = Math.max(Math.abs(dx), Math.abs(dy), Math.abs(dz))
        dx /= m
        dy /= m
        dz /= m
        len2 = dx * dx + dy * dy + dz * dz
        scale = maxSpeed / Math.sqrt(len2)
      }
      e.vx = dx * scale
      e.vy = dy * scale
      e.vz = dz * scale
      e.lastSeq = seq
      e.buttons = inputs.buttons(i)
    }
  }

  const integrate = (entities: Map<number, SimEntity>, dt: number): void => {
    for (const e of entities.values()) {
      let x = e.x + e.vx * dt
      let y = e.y + e.vy * dt
      let z = e.z + e.vz * dt
      x = x < loX ? loX : x > hiX ? hiX : x
      y = y < loY ? loY : y > hiY ? hiY : y
      z = z < loZ ? loZ : z > hiZ ? hiZ : z
      e.x = x
      e.y = y
      e.z = z
    }
  }

  return {
    name: "kinematic",
    spawnPoint: (playerId: string, _world: WorldState) => {
      const h1 = fnv1a(playerId)
      const h2 = fmix32(h1 ^ 0x9e3779b9)
      const angle = (h1 / TWO_POW_32) * 2 * Math.PI
      // sqrt makes the distribution uniform over the disc's area.
      const r = Math.min(spawnRadius, worldHalfExtent) * Math.sqrt(h2 / TWO_POW_32)
      return { x: r * Math.cos(angle), y: 0, z: r * Math.sin(angle) }
    },
    step: (world: WorldState, inputs: InputBuffer, dt: number) => {
      applyInputs(world.entities, inputs)
      integrate(world.entities, dt)
    }
  }
}
