/**
 * The chat word filter: pure, built once from the configured banned words.
 *
 * Matching is by whole words, after normalising both the banned words and
 * the message the same way:
 *  - Unicode compatibility decomposition (NFKD), then diacritics (combining
 *    marks) and invisible format characters (zero-width space, soft hyphen,
 *    ...) are removed, and the text is lower-cased: "BÁD", "ｂａｄ", "b\u200Bad"
 *    all read "bad";
 *  - common look-alike digits and symbols read as letters: 0→o 1→i 3→e 4→a
 *    5→s 7→t @→a $→s;
 *  - a letter repeated in the message still matches ("baaad" matches "bad",
 *    but "bad" does not match a banned "badd");
 *  - letters spelled out with separators are joined ("b a d", "b.a.d").
 * Anything else separates words, so "badminton" does not match "bad".
 * A banned entry of several words ("bad word") matches those words in a row.
 */

export type ModerationResult = { readonly ok: true } | { readonly ok: false; readonly reason: string }

const OK: ModerationResult = Object.freeze({ ok: true })
const REJECTED: ModerationResult = Object.freeze({ ok: false, reason: "message contains a banned word" })

const LOOKALIKES: Readonly<Record<string, string>> = {
  "0": "o",
  "1": "i",
  "3": "e",
  "4": "a",
  "5": "s",
  "7": "t",
  "@": "a",
  "$": "s"
}

const MARKS_AND_FORMAT = /[\p{M}\p{Cf}]/gu
const LOOKALIKE = /[013457@$]/g
const SEPARATORS = /[^\p{L}\p{N}]+/u

/** The words of `text` after normalisation (see the module comment). */
export const normalizeWords = (text: string): Array<string> => {
  const normalized = text
    .normalize("NFKD")
    .replace(MARKS_AND_FORMAT, "")
    .toLowerCase()
    .replace(LOOKALIKE, (c) => LOOKALIKES[c]!)
  return normalized.split(SEPARATORS).filter((w) => w.length > 0)
}

/** Joins runs of two or more one-character words: ["so","b","a","d"] → ["so","bad"]. */
const joinSpelledOut = (words: ReadonlyArray<string>): Array<string> => {
  const out: Array<string> = []
  let run = ""
  let runLength = 0
  const endRun = () => {
    if (runLength > 0) out.push(run)
    run = ""
    runLength = 0
  }
  for (const w of words) {
    if ([...w].length === 1) {
      run += w
      runLength++
    } else {
      endRun()
      out.push(w)
    }
  }
  endRun()
  return out
}

/** "bass" → "b+a+ss+": each run of k equal letters matches k or more. */
const wordPattern = (word: string): string => {
  const chars = [...word]
  let out = ""
  for (let i = 0; i < chars.length;) {
    let j = i
    while (j < chars.length && chars[j] === chars[i]) j++
    const c = chars[i]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    out += c.repeat(j - i) + "+"
    i = j
  }
  return out
}

/**
 * A filter rejecting messages that contain any of `bannedWords` (see the
 * module comment for the matching rules). The rejection reason never repeats
 * the word. With no banned words every message passes.
 */
export const makeModerationFilter = (
  bannedWords: ReadonlyArray<string>
): (text: string) => ModerationResult => {
  const alternatives = new Set<string>()
  for (const entry of bannedWords) {
    const words = normalizeWords(entry)
    if (words.length > 0) alternatives.add(words.map(wordPattern).join(" "))
  }
  if (alternatives.size === 0) return () => OK

  // Words are joined by single spaces; an alternative must start and end on
  // word boundaries of that string.
  const banned = new RegExp(`(?:^| )(?:${[...alternatives].join("|")})(?= |$)`, "u")

  return (text) => {
    const words = normalizeWords(text)
    if (words.length === 0) return OK
    if (banned.test(words.join(" "))) return REJECTED
    const joined = joinSpelledOut(words)
    if (joined.length !== words.length && banned.test(joined.join(" "))) return REJECTED
    return OK
  }
}
