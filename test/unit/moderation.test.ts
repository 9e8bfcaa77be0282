import { describe, expect, it } from "vitest"
import { makeModerationFilter, normalizeWords } from "../../src/experts/chat/ModerationFilter.js"

const filter = makeModerationFilter(["darn", "heck", "bass", "bad phrase", "Crème"])

describe("ModerationFilter", () => {
  const rejected: Array<[string, string]> = [
    ["exact word", "darn"],
    ["in a sentence", "well darn it"],
    ["upper case", "DARN it"],
    ["punctuation around", "oh, darn!"],
    ["diacritics", "dárn"],
    ["fullwidth letters", "ｄａｒｎ"],
    ["repeated letters", "daaaarnnnn"],
    ["look-alike digits", "h3ck"],
    ["look-alike symbols", "ba$$"],
    ["spelled out with spaces", "d a r n"],
    ["spelled out with dots", "you d.a.r.n fool"],
    ["zero-width space inside", "da\u200Brn"],
    ["multi-word entry", "what a bad   phrase"],
    ["banned word with diacritics, text without", "creme"],
    ["banned word with diacritics, text with", "CRÈME brulee"],
    ["double letters kept", "basss"]
  ]
  for (const [name, text] of rejected) {
    it(`rejects: ${name}`, () => {
      expect(filter(text)).toEqual({ ok: false, reason: "message contains a banned word" })
    })
  }

  const accepted: Array<[string, string]> = [
    ["clean text", "hello world"],
    ["empty", ""],
    ["only punctuation", "?!..."],
    ["banned word inside a longer word", "darning socks"],
    ["prefix of a longer word", "heckle"],
    ["fewer repeated letters than the banned word", "bas"],
    ["words of a phrase apart", "bad luck with that phrase"],
    ["numbers stay numbers unless they spell a word", "room 101"]
  ]
  for (const [name, text] of accepted) {
    it(`accepts: ${name}`, () => {
      expect(filter(text)).toEqual({ ok: true })
    })
  }

  it("never repeats the banned word in the reason", () => {
    const result = filter("darn")
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.reason).not.toMatch(/darn/i)
  })

  it("accepts everything with no banned words (or only empty ones)", () => {
    expect(makeModerationFilter([])("darn")).toEqual({ ok: true })
    expect(makeModerationFilter(["", "  ", "!!"])("darn !!")).toEqual({ ok: true })
  })

  it("treats regex metacharacters in banned words literally", () => {
    const f = makeModerationFilter(["a.b", "(x)"])
    expect(f("a b")).toEqual({ ok: false, reason: "message contains a banned word" }) // "a.b" normalises to words a, b
    expect(f("axb")).toEqual({ ok: true })
    expect(f("x")).toEqual({ ok: false, reason: "message contains a banned word" })
  })

  it("normalises words", () => {
    expect(normalizeWords("  Héllo,\tWÖRLD!! h3ll0 ")).toEqual(["hello", "world", "hello"])
  })
})
