import { describe, expect, it } from "vitest"
import { INPUT_HEADER_BYTES, INPUT_RECORD_BYTES, InputBuffer } from "../../src/region/InputBuffer.js"

const rows = (b: InputBuffer) =>
  Array.from({ length: b.count }, (_, i) => [b.entityId(i), b.seq(i), b.dx(i), b.dy(i), b.dz(i), b.buttons(i)])

describe("InputBuffer", () => {
  it("pushes, reads back and clears", () => {
    const b = new InputBuffer()
    b.push(7, 1, 0.5, -0.25, 1, 3)
    b.push(9, 4294967295, 0, 0, -1, 0)
    expect(b.count).toBe(2)
    expect(rows(b)).toEqual([
      [7, 1, 0.5, -0.25, 1, 3],
      [9, 4294967295, 0, 0, -1, 0]
    ])
    b.clear()
    expect(b.count).toBe(0)
    expect(b.toBytes().byteLength).toBe(INPUT_HEADER_BYTES)
  })

  it("round-trips through bytes", () => {
    const b = new InputBuffer(2)
    for (let i = 0; i < 10; i++) b.push(i + 100, i + 1, i * 0.125, -i * 0.5, 1 - i, i * 3)
    const bytes = b.toBytes()
    expect(bytes.byteLength).toBe(INPUT_HEADER_BYTES + 10 * INPUT_RECORD_BYTES)
    expect(b.byteLength).toBe(bytes.byteLength)
    const back = InputBuffer.fromBytes(bytes)
    expect(rows(back)).toEqual(rows(b))
  })

  it("decodes from an unaligned view inside a larger buffer", () => {
    const b = new InputBuffer()
    b.push(1, 2, 0.75, 0, -0.75, 8)
    const bytes = b.toBytes()
    const big = new Uint8Array(bytes.byteLength + 3)
    big.set(bytes, 3)
    expect(rows(InputBuffer.fromBytes(big.subarray(3)))).toEqual(rows(b))
  })

  it("appends encoded batches after existing inputs", () => {
    const a = new InputBuffer()
    a.push(1, 1, 1, 0, 0, 0)
    const other = new InputBuffer()
    for (let i = 0; i < 100; i++) other.push(2, i + 1, 0, 1, 0, 0)
    a.appendBytes(other.toBytes())
    expect(a.count).toBe(101)
    expect(a.entityId(0)).toBe(1)
    expect(a.seq(100)).toBe(100)
  })

  it("doubles its capacity when full and keeps the contents", () => {
    const b = new InputBuffer(4)
    expect(b.capacity).toBe(4)
    for (let i = 0; i < 5; i++) b.push(i, i, 0, 0, 0, 0)
    expect(b.capacity).toBe(8)
    for (let i = 5; i < 1000; i++) b.push(i, i, 0, 0, 0, 0)
    expect(b.capacity).toBe(1024)
    expect(b.count).toBe(1000)
    for (let i = 0; i < 1000; i++) expect(b.entityId(i)).toBe(i)
    b.clear()
    expect(b.capacity).toBe(1024)
  })

  it("saturates finite out-of-f32-range directions and zeroes non-finite ones", () => {
    const b = new InputBuffer()
    b.push(1, 1, 1e300, -1e300, Number.NaN, 0)
    b.push(1, 2, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5, 0)
    expect(Number.isFinite(b.dx(0))).toBe(true)
    expect(b.dx(0)).toBeGreaterThan(1e38)
    expect(b.dy(0)).toBeLessThan(-1e38)
    expect(b.dz(0)).toBe(0)
    expect([b.dx(1), b.dy(1), b.dz(1)]).toEqual([0, 0, 0.5])
    expect(() => InputBuffer.fromBytes(b.toBytes())).not.toThrow()
  })

  const valid = (() => {
    const b = new InputBuffer()
    b.push(1, 1, 0, 0, 0, 0)
    b.push(2, 2, 0, 0, 0, 0)
    return b.toBytes()
  })()
  const withCount = (count: number, bytes: Uint8Array) => {
    const copy = bytes.slice()
    new DataView(copy.buffer).setUint32(0, count, true)
    return copy
  }
  const withNaN = (() => {
    const copy = valid.slice()
    new DataView(copy.buffer).setFloat32(INPUT_HEADER_BYTES + INPUT_RECORD_BYTES + 8, Number.NaN, true)
    return copy
  })()
  const withInf = (() => {
    const copy = valid.slice()
    new DataView(copy.buffer).setFloat32(INPUT_HEADER_BYTES + 16, Number.POSITIVE_INFINITY, true)
    return copy
  })()

  it.each([
    ["empty", new Uint8Array(0), /shorter than/],
    ["truncated header", new Uint8Array(3), /shorter than/],
    ["truncated record", valid.subarray(0, valid.byteLength - 1), /payload is/],
    ["trailing bytes", new Uint8Array([...valid, 0]), /payload is/],
    ["count too large", withCount(3, valid), /header says 3 inputs/],
    ["count too small", withCount(1, valid), /header says 1 inputs/],
    ["huge count", withCount(0xffffffff, valid), /header says 4294967295/],
    ["NaN direction", withNaN, /input 1 has a non-finite direction/],
    ["infinite direction", withInf, /input 0 has a non-finite direction/],
    ["not bytes", "nope" as unknown as Uint8Array, /expected a Uint8Array/]
  ])("rejects malformed bytes: %s", (_name, bytes, message) => {
    expect(() => InputBuffer.fromBytes(bytes)).toThrow(message)
  })

  it("leaves the buffer unchanged when appending a malformed batch", () => {
    const b = new InputBuffer()
    b.push(5, 5, 0, 0, 0, 0)
    expect(() => b.appendBytes(withNaN)).toThrow()
    expect(b.count).toBe(1)
  })

  it("decodes an empty batch", () => {
    expect(InputBuffer.fromBytes(new Uint8Array(4)).count).toBe(0)
  })
})
