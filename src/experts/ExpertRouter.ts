import { ChatChannel } from "../protocol/Opcodes.js"

/**
 * Maps client message kinds to expert kinds and entity keys. Chat is the
 * first expert; matchmaking, physics, ai... add their rows here.
 */
export const ExpertKind = {
  Chat: "chat"
} as const
export type ExpertKind = (typeof ExpertKind)[keyof typeof ExpertKind]

export interface ChatRoute {
  readonly kind: typeof ExpertKind.Chat
  readonly key: string
}

export const worldChannelKey = (experienceId: string): string => `w:${experienceId}`
export const instanceChannelKey = (worldId: string): string => `i:${worldId}`
export const privateChannelKey = (a: string, b: string): string => (a < b ? `p:${a}|${b}` : `p:${b}|${a}`)

/** The channel kind a chat entity key stands for. */
export const channelOfKey = (key: string): ChatChannel =>
  key.startsWith("w:") ? ChatChannel.World : key.startsWith("i:") ? ChatChannel.Instance : ChatChannel.Private

/** Routes a chat frame of a player to its expert entity; undefined when the player has no such channel. */
export const routeChat = (
  channel: ChatChannel,
  from: { readonly playerId: string; readonly experienceId: string | null; readonly worldId: string | null },
  to: string | undefined
): ChatRoute | undefined => {
  switch (channel) {
    case ChatChannel.World:
      return from.experienceId === null ? undefined : { kind: ExpertKind.Chat, key: worldChannelKey(from.experienceId) }
    case ChatChannel.Instance:
      return from.worldId === null ? undefined : { kind: ExpertKind.Chat, key: instanceChannelKey(from.worldId) }
    case ChatChannel.Private:
      return to === undefined ? undefined : { kind: ExpertKind.Chat, key: privateChannelKey(from.playerId, to) }
  }
}
