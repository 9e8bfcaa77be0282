import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer } from "effect"
import { StorageError } from "./StorageError.js"

/** One chat message to store. `toPlayerId` is set for whispers. */
export interface ChatMessageInput {
  readonly channelKey: string
  readonly fromPlayerId: string
  readonly fromName: string
  readonly toPlayerId: string | null
  readonly text: string
  /** Epoch milliseconds. */
  readonly sentAt: number
}

/** A stored chat message; `id` increases with insertion order. */
export interface StoredChatMessage extends ChatMessageInput {
  readonly id: number
}

interface ChatRow {
  readonly id: number | string
  readonly channel_key: string
  readonly from_player_id: string
  readonly from_name: string
  readonly to_player_id: string | null
  readonly text: string
  readonly sent_at: number | string
}

const toMessage = (row: ChatRow): StoredChatMessage => ({
  id: Number(row.id),
  channelKey: row.channel_key,
  fromPlayerId: row.from_player_id,
  fromName: row.from_name,
  toPlayerId: row.to_player_id,
  text: row.text,
  sentAt: Number(row.sent_at)
})

/** Chat history per channel. */
export class ChatRepository extends Context.Tag("tessera/storage/ChatRepository")<
  ChatRepository,
  {
    readonly append: (msg: ChatMessageInput) => Effect.Effect<void, StorageError>
    /** The newest `limit` messages of the channel, oldest first. */
    readonly history: (
      channelKey: string,
      limit: number
    ) => Effect.Effect<ReadonlyArray<StoredChatMessage>, StorageError>
  }
>() {}

const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient

  const append = (msg: ChatMessageInput) =>
    sql`
      INSERT INTO chat_messages (channel_key, from_player_id, from_name, to_player_id, text, sent_at)
      VALUES (${msg.channelKey}, ${msg.fromPlayerId}, ${msg.fromName}, ${msg.toPlayerId}, ${msg.text}, ${msg.sentAt})
    `.pipe(
      Effect.asVoid,
      Effect.mapError(StorageError.fromSqlError("chat.append"))
    )

  const history = (channelKey: string, limit: number) => {
    const n = Math.floor(limit)
    if (!(n > 0)) return Effect.succeed([] as ReadonlyArray<StoredChatMessage>)
    return sql<ChatRow>`
      SELECT id, channel_key, from_player_id, from_name, to_player_id, text, sent_at
      FROM chat_messages WHERE channel_key = ${channelKey}
      ORDER BY id DESC LIMIT ${n}
    `.pipe(
      Effect.map((rows): ReadonlyArray<StoredChatMessage> => {
        const out = new Array<StoredChatMessage>(rows.length)
        for (let i = 0; i < rows.length; i++) out[rows.length - 1 - i] = toMessage(rows[i]!)
        return out
      }),
      Effect.mapError(StorageError.fromSqlError("chat.history"))
    )
  }

  return ChatRepository.of({ append, history })
})

/** The SQL implementation. */
export const layer: Layer.Layer<ChatRepository, never, SqlClient.SqlClient> = Layer.effect(ChatRepository, make)
