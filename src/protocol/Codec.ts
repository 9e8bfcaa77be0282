import { Packr } from "msgpackr"

/**
 * The one msgpack codec of the project. Plain msgpack (no records/structures
 * extension) so any msgpack implementation can speak the protocol.
 */
export const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: "number" })

export const encode = (value: unknown): Buffer => packr.pack(value)

export const decode = (bytes: Uint8Array): unknown => packr.unpack(bytes)
