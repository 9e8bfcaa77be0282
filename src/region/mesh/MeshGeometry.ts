/**
 * Geometry of an open world cut into an octree of cubic regions.
 *
 * The world is rootsX*rootsY*rootsZ root cubes of `rootSize` metres, centred
 * on the origin. A region key (level, x, y, z) names one cube: level 0 are the
 * roots; each level halves the size, down to `minSize`. Indices count from the
 * world's min corner, so they are always >= 0.
 *
 * Membership rule (one rule everywhere, so a point belongs to exactly one
 * leaf): a cell is half-open, [min, max) on each axis, except that a cell
 * touching the world's max face also owns that face. Points outside the world
 * are clamped onto it first (NaN clamps to the min face) — the world has no
 * outside, an entity that strays is simply at the edge.
 *
 * Cell bounds are always computed as `worldMin + i * size`: sizes are the
 * root size divided by powers of two, so a child's faces are bit-identical to
 * its parent's and its neighbours' and float rounding cannot open a seam.
 */

export interface Vec3 {
  readonly x: number
  readonly y: number
  readonly z: number
}

export interface Box {
  readonly minX: number
  readonly minY: number
  readonly minZ: number
  readonly maxX: number
  readonly maxY: number
  readonly maxZ: number
}

/** An open world: rootsX*rootsY*rootsZ root cubes of rootSize metres, centred on the origin. */
export interface MeshGeometry {
  readonly rootSize: number
  readonly minSize: number
  /** Width of the zone along each boundary where neighbours see each other's entities as ghosts. */
  readonly overlap: number
  /** How far past its region's face an entity may go before it is handed over. */
  readonly hysteresis: number
  readonly rootsX: number
  readonly rootsY: number
  readonly rootsZ: number
}

/** A region of the octree: level 0 = root cubes; children of (l,x,y,z) are (l+1, 2x+dx, 2y+dy, 2z+dz). Indices >= 0. */
export interface RegionKey {
  readonly level: number
  readonly x: number
  readonly y: number
  readonly z: number
}

/** Deep enough for centimetre cells under a 2 km root; bounds the work of partition checks. */
export const MAX_LEVELS = 16
/** Root counts per axis; keeps cell indices far from float trouble at any level. */
export const MAX_ROOTS_PER_AXIS = 4096

const isPositiveFinite = (v: number): boolean => Number.isFinite(v) && v > 0

/** A message describing what is wrong with the geometry, or undefined when it is usable. */
export const validateGeometry = (g: MeshGeometry): string | undefined => {
  if (!isPositiveFinite(g.rootSize)) return `mesh rootSize must be a finite number > 0, got ${g.rootSize}`
  if (!isPositiveFinite(g.minSize)) return `mesh minSize must be a finite number > 0, got ${g.minSize}`
  if (g.minSize > g.rootSize) return `mesh minSize (${g.minSize}) must not exceed rootSize (${g.rootSize})`
  let k = 0
  while (k < MAX_LEVELS && g.rootSize / 2 ** k > g.minSize) k++
  if (g.rootSize / 2 ** k !== g.minSize) {
    return `mesh minSize (${g.minSize}) must be rootSize (${g.rootSize}) divided by a power of two (at most 2^${MAX_LEVELS})`
  }
  if (!(Number.isFinite(g.overlap) && g.overlap > 0)) return `mesh overlap must be a finite number > 0, got ${g.overlap}`
  // A ghost zone wider than half a cell would reach past the neighbour into the next one.
  if (g.overlap >= g.minSize / 2) return `mesh overlap (${g.overlap}) must be less than minSize/2 (${g.minSize / 2})`
  if (!(Number.isFinite(g.hysteresis) && g.hysteresis >= 0)) {
    return `mesh hysteresis must be a finite number >= 0, got ${g.hysteresis}`
  }
  // The new owner must already be replicating the entity when it takes authority.
  if (g.hysteresis >= g.overlap) return `mesh hysteresis (${g.hysteresis}) must be less than overlap (${g.overlap})`
  for (const [name, n] of [
    ["rootsX", g.rootsX],
    ["rootsY", g.rootsY],
    ["rootsZ", g.rootsZ]
  ] as const) {
    if (!(Number.isInteger(n) && n >= 1 && n <= MAX_ROOTS_PER_AXIS)) {
      return `mesh ${name} must be an integer in [1, ${MAX_ROOTS_PER_AXIS}], got ${n}`
    }
  }
  return undefined
}

export const sizeAt = (g: MeshGeometry, level: number): number => g.rootSize / 2 ** level

/** log2(rootSize/minSize): the deepest level. */
export const maxLevel = (g: MeshGeometry): number => {
  let k = 0
  while (k < MAX_LEVELS && sizeAt(g, k) > g.minSize) k++
  return k
}

/** Cells per axis at a level. */
export const cellsPerAxis = (g: MeshGeometry, level: number): { readonly x: number; readonly y: number; readonly z: number } => {
  const f = 2 ** level
  return { x: g.rootsX * f, y: g.rootsY * f, z: g.rootsZ * f }
}

const worldMin = (g: MeshGeometry, roots: number): number => -(roots * g.rootSize) / 2

export const worldBox = (g: MeshGeometry): Box => {
  const minX = worldMin(g, g.rootsX)
  const minY = worldMin(g, g.rootsY)
  const minZ = worldMin(g, g.rootsZ)
  return {
    minX,
    minY,
    minZ,
    maxX: minX + g.rootsX * g.rootSize,
    maxY: minY + g.rootsY * g.rootSize,
    maxZ: minZ + g.rootsZ * g.rootSize
  }
}

export const boundsOf = (g: MeshGeometry, key: RegionKey): Box => {
  const s = sizeAt(g, key.level)
  const ox = worldMin(g, g.rootsX)
  const oy = worldMin(g, g.rootsY)
  const oz = worldMin(g, g.rootsZ)
  return {
    minX: ox + key.x * s,
    minY: oy + key.y * s,
    minZ: oz + key.z * s,
    maxX: ox + (key.x + 1) * s,
    maxY: oy + (key.y + 1) * s,
    maxZ: oz + (key.z + 1) * s
  }
}

/** Clamps v into [min, max]; NaN goes to min so a bad coordinate still lands somewhere. */
export const clampCoord = (v: number, min: number, max: number): number => (v >= min ? (v > max ? max : v) : min)

/** The point moved onto the world box if it lies outside (NaN coordinates go to the min face). */
export const clampToWorld = (g: MeshGeometry, p: Vec3): Vec3 => {
  const w = worldBox(g)
  const x = clampCoord(p.x, w.minX, w.maxX)
  const y = clampCoord(p.y, w.minY, w.maxY)
  const z = clampCoord(p.z, w.minZ, w.maxZ)
  return x === p.x && y === p.y && z === p.z ? p : { x, y, z }
}

/**
 * Index of the cell holding v (already clamped) on one axis of n cells from
 * `origin`: the division gives the answer up to rounding; the two corrections
 * make it agree exactly with the faces that boundsOf computes.
 */
export const axisIndex = (v: number, origin: number, size: number, n: number): number => {
  let i = Math.floor((v - origin) / size)
  if (!(i >= 0)) i = 0
  if (i > n - 1) i = n - 1
  if (i > 0 && v < origin + i * size) i--
  if (i < n - 1 && v >= origin + (i + 1) * size) i++
  return i
}

/** The cell at `level` holding p (p clamped into the world; points on the world's max face belong to the last cell). */
export const keyAt = (g: MeshGeometry, level: number, p: Vec3): RegionKey => {
  const w = worldBox(g)
  const s = sizeAt(g, level)
  const n = cellsPerAxis(g, level)
  return {
    level,
    x: axisIndex(clampCoord(p.x, w.minX, w.maxX), w.minX, s, n.x),
    y: axisIndex(clampCoord(p.y, w.minY, w.maxY), w.minY, s, n.y),
    z: axisIndex(clampCoord(p.z, w.minZ, w.maxZ), w.minZ, s, n.z)
  }
}

/** True when the key names a cell of this world (level within [0, maxLevel], indices in range, all integers). */
export const isValidKey = (g: MeshGeometry, key: RegionKey): boolean => {
  if (!(Number.isInteger(key.level) && key.level >= 0 && key.level <= maxLevel(g))) return false
  const n = cellsPerAxis(g, key.level)
  return (
    Number.isInteger(key.x) && key.x >= 0 && key.x < n.x &&
    Number.isInteger(key.y) && key.y >= 0 && key.y < n.y &&
    Number.isInteger(key.z) && key.z >= 0 && key.z < n.z
  )
}

export const parentOf = (key: RegionKey): RegionKey | undefined =>
  key.level <= 0
    ? undefined
    : { level: key.level - 1, x: Math.floor(key.x / 2), y: Math.floor(key.y / 2), z: Math.floor(key.z / 2) }

/** The 8 children, dx-major then dy then dz (0,0,0), (0,0,1), (0,1,0), ... (1,1,1). */
export const childrenOf = (key: RegionKey): ReadonlyArray<RegionKey> => {
  const out: Array<RegionKey> = []
  const level = key.level + 1
  for (let dx = 0; dx < 2; dx++) {
    for (let dy = 0; dy < 2; dy++) {
      for (let dz = 0; dz < 2; dz++) out.push({ level, x: 2 * key.x + dx, y: 2 * key.y + dy, z: 2 * key.z + dz })
    }
  }
  return out
}

/** True when `a` is a strict ancestor of `b` (a key is not its own ancestor). */
export const isAncestor = (a: RegionKey, b: RegionKey): boolean => {
  const d = b.level - a.level
  if (d <= 0) return false
  const f = 2 ** d
  return Math.floor(b.x / f) === a.x && Math.floor(b.y / f) === a.y && Math.floor(b.z / f) === a.z
}

export const sameKey = (a: RegionKey, b: RegionKey): boolean =>
  a.level === b.level && a.x === b.x && a.y === b.y && a.z === b.z

/** Canonical order: coarse levels first, then x, y, z. */
export const compareKeys = (a: RegionKey, b: RegionKey): number =>
  a.level - b.level || a.x - b.x || a.y - b.y || a.z - b.z

/** "L/x/y/z", e.g. "0/1/0/3". */
export const keyString = (key: RegionKey): string => `${key.level}/${key.x}/${key.y}/${key.z}`

// Canonical non-negative integers only: no sign, no leading zeros, no exponent, so a key has one spelling.
const NAT_RE = /^(?:0|[1-9]\d{0,14})$/

/** Parses "L/x/y/z"; undefined for anything that is not four canonical non-negative integers. */
export const parseKeyString = (s: string): RegionKey | undefined => {
  const parts = s.split("/")
  if (parts.length !== 4) return undefined
  for (const part of parts) if (!NAT_RE.test(part)) return undefined
  return { level: Number(parts[0]), x: Number(parts[1]), y: Number(parts[2]), z: Number(parts[3]) }
}

/** `${worldId}/${keyString(key)}`, e.g. "frontier.1/0/1/0/3". World ids never contain "/". */
export const regionIdOf = (worldId: string, key: RegionKey): string => `${worldId}/${keyString(key)}`

/** Splits a region id at its first "/"; undefined when the world id is empty or the key is malformed. */
export const parseRegionId = (regionId: string): { worldId: string; key: RegionKey } | undefined => {
  const slash = regionId.indexOf("/")
  if (slash <= 0) return undefined
  const key = parseKeyString(regionId.slice(slash + 1))
  return key === undefined ? undefined : { worldId: regionId.slice(0, slash), key }
}

/**
 * Half-open membership [min, max) on each axis. Pass the world box to apply
 * the world's max-face rule: a box whose max face lies on the world's max face
 * also contains that face. With it, every point of the world is in exactly one
 * leaf.
 */
export const contains = (box: Box, p: Vec3, world?: Box): boolean =>
  p.x >= box.minX && (p.x < box.maxX || (world !== undefined && p.x === box.maxX && box.maxX === world.maxX)) &&
  p.y >= box.minY && (p.y < box.maxY || (world !== undefined && p.y === box.maxY && box.maxY === world.maxY)) &&
  p.z >= box.minZ && (p.z < box.maxZ || (world !== undefined && p.z === box.maxZ && box.maxZ === world.maxZ))

/** Closed membership [min, max] on each axis (used where a symmetric test matters more than uniqueness). */
export const containsClosed = (box: Box, p: Vec3): boolean =>
  p.x >= box.minX && p.x <= box.maxX && p.y >= box.minY && p.y <= box.maxY && p.z >= box.minZ && p.z <= box.maxZ

export const expand = (box: Box, margin: number): Box => ({
  minX: box.minX - margin,
  minY: box.minY - margin,
  minZ: box.minZ - margin,
  maxX: box.maxX + margin,
  maxY: box.maxY + margin,
  maxZ: box.maxZ + margin
})

/** 0 inside (or on) the box, else the Euclidean distance to it. */
export const distanceOutside = (box: Box, p: Vec3): number => {
  const dx = Math.max(box.minX - p.x, 0, p.x - box.maxX)
  const dy = Math.max(box.minY - p.y, 0, p.y - box.maxY)
  const dz = Math.max(box.minZ - p.z, 0, p.z - box.maxZ)
  return Math.sqrt(dx * dx + dy * dy + dz * dz)
}

/** True when the boxes share volume; boxes that only touch along a face, edge or corner do not intersect. */
export const intersects = (a: Box, b: Box): boolean =>
  a.minX < b.maxX && b.minX < a.maxX && a.minY < b.maxY && b.minY < a.maxY && a.minZ < b.maxZ && b.minZ < a.maxZ
