// Types of the chatd JS SDK (chatd.js).

export declare const MessageType: Readonly<{ TEXT: 1; VOICE: 2; IMAGE: 3; FILE: 4; LOCATION: 5; CUSTOM: 6; NOTICE: 7 }>;
export declare const ConversationType: Readonly<{ PRIVATE: 1; GROUP: 2 }>;

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface UserRef { name: string; avatarUri: string }

export interface Message {
  msgId: string;
  /** The receiving user's own conversation id (set by the SDK). */
  sid: string;
  content: Record<string, unknown>;
  conversationType: 1 | 2;
  senderUserId: string;
  targetId: string;
  messageType: number;
  date: string;
  sendUser: UserRef;
  /** Gapless per conversation, from 1. */
  seq: number;
  timestamp: number;
  clientMsgId?: string;
  /** The message's change version (0 or absent: never changed). A newer version wins. */
  version?: number;
  editedAt?: number;
  editCount?: number;
  /** Recalled: the content is gone (`{content: ""}`), msgId and seq stay. */
  recalled?: boolean;
  /** Who recalled it; absent when the app did. */
  recalledBy?: string;
  recalledAt?: number;
  /** msgId of the message this one answers, with a quote of it. */
  replyTo?: string;
  quote?: Quote;
  mentions?: string[];
  mentionAll?: boolean;
  reactions?: Reaction[];
}

export interface Quote {
  msgId: string;
  seq: number;
  senderUserId: string;
  sendUser: UserRef;
  messageType: number;
  /** The start of its text; "" when recalled or not text. */
  excerpt: string;
  recalled?: boolean;
}

export interface Reaction {
  emoji: string;
  count: number;
  /** The first few users who chose it. */
  userIds: string[];
  /** Whether this user is one of them. */
  me: boolean;
}

/** A `message-updated` event: a message's new state, or (deleted) a range this user hid. */
export type MessageUpdate =
  | (Message & { deleted?: false; reaction?: { userId: string; emoji: string; added: boolean } })
  | { sid: string; deleted: true; msgId?: string; fromSeq: number; toSeq: number; version: number; cleared?: boolean };

export interface Hidden { msgId?: string; fromSeq: number; toSeq: number; version: number; cleared?: boolean }

export interface LastMsg {
  /** The inner text (`body.content` when it is a string, else ""), as node-chat lists it. */
  content: string;
  /** The whole content object. */
  body: Record<string, unknown>;
  messageType: number;
  date: string;
  msgId: string;
  timestamp: number;
}

export interface Conversation {
  sid: string;
  conversationType: 1 | 2;
  /** The peer's user id (private) or the group id. */
  targetId: string;
  unread: number;
  title: string;
  avatar: string;
  lastMsg?: LastMsg;
  lastSeq: number;
  readSeq: number;
  /** Unread messages that mention this user or everyone: show "[@me]". */
  mentionedUnread?: number;
  /** The conversation's change cursor, as of the list. */
  changeVersion?: number;
  /** Private conversations: how far the peer has read ("seen" when ≥ a message's seq). */
  peerReadSeq?: number;
  /** This user's own settings (session-settings). */
  pinned?: boolean;
  pinnedAt?: number;
  muted?: boolean;
  draft?: string;
}

export interface Typing { sid: string; userId: string; typing: boolean; expiresIn: number }
export interface ReadReceipt { sid: string; userId: string; readSeq: number }
export interface Presence { userId: string; online: boolean; /** Unix ms; 0: unknown */ lastSeen: number }
export interface MessageReaders { readCount: number; memberCount: number; readers?: { userId: string; readSeq: number }[] }

export interface ReadMark { sid: string; readSeq: number; unread: number }

export interface Upload { fid: string; fullUrl: string; name: string; size: number; contentType: string }

export interface ChatdClientOptions {
  /** chatd's base URL, e.g. https://chat.example.com; defaults to location.origin in a browser. */
  url?: string;
  appId: string;
  token: string;
  /** The token's user id: lets the SDK tell your own messages apart before your first send. */
  userId?: string;
  /** A WebSocket constructor; required under Node 20 (npm ws). */
  WebSocket?: unknown;
  /** An XMLHttpRequest constructor for uploads with progress; without one, fetch is used. */
  XMLHttpRequest?: unknown;
  /** Socket.IO path, default /socket.io/. */
  path?: string;
  /** Reconnect automatically, default true. */
  reconnect?: boolean;
  /** Reconnect backoff bounds in ms, default 500 and 10000. */
  minReconnectDelay?: number;
  maxReconnectDelay?: number;
  /** Per-request ack timeout while connected, in ms (0: none), default 30000. */
  requestTimeout?: number;
}

export interface SendOptions {
  /** Send to a group (targetId is a group id). */
  group?: boolean;
  /** Idempotency key; one is generated when omitted. */
  clientMsgId?: string;
  /** msgId of the message answered (same conversation). */
  replyTo?: string;
  /** Members to mention. */
  mentions?: string[];
  /** Mention everyone (groups). */
  mentionAll?: boolean;
}

export interface ClientEvents {
  /** Every message after the baseline exactly once, in seq order per conversation (README, "Exactly once"). */
  message: (message: Message, conversation: Conversation) => void;
  /** A recall, edit, reaction or delete-for-me, each state once, from pushes, acks or sync-changes (README, "Message updates"). */
  'message-updated': (update: MessageUpdate, conversation: Conversation | undefined) => void;
  conversations: (list: Conversation[]) => void;
  read: (mark: ReadMark) => void;
  /** Someone started or stopped typing in a conversation (ends by itself after expiresIn ms). */
  typing: (t: Typing) => void;
  /** The peer of a private conversation read it up to readSeq. */
  'read-receipt': (r: ReadReceipt) => void;
  /** A subscribed user went online or offline. */
  presence: (p: Presence) => void;
  'session-updated': (s: SessionSettings) => void;
  /** Group members who read the sender's messages, batched (at most one a second per conversation). */
  'read-receipts': (r: { sid: string; readers: { userId: string; readSeq: number }[] }) => void;
  state: (state: ConnectionState) => void;
  connect: (info: { reconnect: boolean }) => void;
  disconnect: (reason: Error) => void;
  error: (err: Error) => void;
  event: (name: string, args: unknown[]) => void;
  /** The user left a group (removed, left, dismissed); its conversation leaves the list. */
  groupEvent: (event: GroupEvent) => void;
}

export declare class ChatdError extends Error {
  /** chatd's status code (1002 bad parameter, 1000 not a member, …), 0 for client-side failures. */
  status: number;
  constructor(message: string, status?: number);
}

export declare class Emitter<E extends Record<string, (...args: any[]) => void> = Record<string, (...args: any[]) => void>> {
  on<K extends keyof E>(event: K, fn: E[K]): () => void;
  once<K extends keyof E>(event: K, fn: E[K]): () => void;
  off<K extends keyof E>(event: K, fn: E[K]): void;
  emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void;
}

export declare function newClientMsgId(): string;

export declare class ChatdClient extends Emitter<ClientEvents> {
  constructor(options: ChatdClientOptions);
  readonly state: ConnectionState;
  userId: string | null;
  /** Resolves once connected and the conversation list is loaded; rejects when the token is refused. */
  connect(): Promise<void>;
  close(): void;
  /** Known conversations, most recent first. */
  conversations(): Conversation[];
  conversation(sid: string): Conversation | undefined;
  refreshConversations(): Promise<Conversation[]>;
  /**
   * A page of messages older than `before` (a msgId), oldest first; without `before`, the newest page.
   * A read of the store: it may overlap `message` events (merge by msgId).
   */
  history(sid: string, options?: { limit?: number; before?: string; around?: number }): Promise<Message[]>;
  send(targetId: string, messageType: number, content: Record<string, unknown>, options?: SendOptions): Promise<Message>;
  sendText(targetId: string, text: string, options?: SendOptions): Promise<Message>;
  sendImage(targetId: string, image: { url?: string; fullUrl?: string; fid?: string; name?: string; size?: number; width?: number; height?: number }, options?: SendOptions): Promise<Message>;
  sendFile(targetId: string, file: { url?: string; fullUrl?: string; fid?: string; name?: string; size?: number; contentType?: string }, options?: SendOptions): Promise<Message>;
  sendLocation(targetId: string, location: { latitude: number; longitude: number; name?: string; address?: string }, options?: SendOptions): Promise<Message>;
  sendCustom(targetId: string, content: Record<string, unknown>, options?: SendOptions): Promise<Message>;
  markRead(sid: string): Promise<void>;
  /** Answer msg with a text in its conversation. */
  reply(msg: Message, text: string, options?: SendOptions): Promise<Message>;
  recall(sid: string, msgId: string): Promise<Message>;
  /** A string is sent as {content: text}. */
  edit(sid: string, msgId: string, content: Record<string, unknown> | string): Promise<Message>;
  react(sid: string, msgId: string, emoji: string): Promise<Message>;
  unreact(sid: string, msgId: string, emoji: string): Promise<Message>;
  /** Hide one message on all of this user's devices. */
  deleteForMe(sid: string, msgId: string): Promise<Hidden>;
  /** Hide the whole conversation so far on all of this user's devices (and mark it read). */
  clear(sid: string): Promise<Hidden>;
  /** Fetch and apply the changes after this client's change cursor (runs by itself after reconnects). */
  syncChanges(sid: string): Promise<void>;
  /** Search this user's messages, newest first (docs/socket-protocol.md, "Search"). */
  search(q: string, options?: SearchOptions): Promise<SearchResult>;
  /** Tell the other members this user is typing; call on each keystroke (throttled). */
  typing(sid: string): Promise<void>;
  typingStop(sid: string): Promise<void>;
  /** Who is typing in sid now. */
  typingUsers(sid: string): string[];
  /** Group members known (from read-receipts pushes) to have read up to seq. */
  readCount(sid: string, seq: number): number;
  /** How many members (and, in small groups, who) read the message. */
  messageReaders(sid: string, msgId: string): Promise<MessageReaders>;
  /** Change this user's pin, mute or draft of a conversation; synced to their other devices. */
  updateSession(sid: string, settings: { pinned?: boolean; muted?: boolean; draft?: string }): Promise<SessionSettings>;
  pin(sid: string, on?: boolean): Promise<SessionSettings>;
  mute(sid: string, on?: boolean): Promise<SessionSettings>;
  setDraft(sid: string, draft: string): Promise<SessionSettings>;
  /** Take a conversation out of the list until its next message. */
  hide(sid: string): Promise<SessionSettings>;
  /** Unread messages of the list, muted conversations excepted. */
  unreadTotal(): Promise<{ unread: number; mentionedUnread: number; sessions: number }>;
  /** Refuse private messages from these users; resolves with every blocked user id. */
  blockUser(userIds: string | string[]): Promise<string[]>;
  unblockUser(userIds: string | string[]): Promise<string[]>;
  blockedList(): Promise<string[]>;
  /** Watch users' presence (only users sharing a conversation are answered); renewed after reconnects. */
  subscribePresence(userIds: string[]): Promise<Presence[]>;
  /** Stop watching these users (all when omitted). */
  unsubscribePresence(userIds?: string[]): Promise<void>;
  upload(file: Blob, options?: { name?: string; onProgress?: (p: { loaded: number; total?: number }) => void }): Promise<Upload>;
  /** Emit any socket event with an ack; resolves with the ack's data, rejects with ChatdError. */
  request<T = unknown>(event: string, ...args: unknown[]): Promise<T>;
}

type Callback<T> = (err: Error | null, data?: T) => void;

/** node-chat SDK names over ChatdClient. */
export declare class ChatClient {
  constructor(appId: string, token: string, host: string, options?: Partial<ChatdClientOptions>);
  readonly client: ChatdClient;
  init(cb?: Callback<void>): Promise<void>;
  close(): void;
  getMessageSessions(cb?: Callback<Conversation[]>): Promise<Conversation[]>;
  /** Newest first, as node-chat returns them. */
  getSessionMessages(sid: string, limit?: number | { limit?: number; lastmsgId?: string }, lastmsgId?: string, cb?: Callback<Message[]>): Promise<Message[]>;
  sendPrivateMessage(targetId: string, messageType: number, content: Record<string, unknown> | string, cb?: Callback<Message>): Promise<Message>;
  sendPrivateMessage(message: { targetId: string; messageType: number; content: Record<string, unknown> | string; clientMsgId?: string }, cb?: Callback<Message>): Promise<Message>;
  sendGroupMessage(targetId: string, messageType: number, content: Record<string, unknown> | string, cb?: Callback<Message>): Promise<Message>;
  sendGroupMessage(message: { targetId: string; messageType: number; content: Record<string, unknown> | string; clientMsgId?: string }, cb?: Callback<Message>): Promise<Message>;
  setMessageSessionRead(sid: string, cb?: Callback<[]>): Promise<[]>;
  uploadFile(file: Blob, onProgress?: (p: { loaded: number; total?: number }) => void, cb?: Callback<Upload>): Promise<Upload>;
  onConnected(fn: (info: { reconnect: boolean }) => void): () => void;
  /** fn gets node-chat's push envelope. */
  onMessage(fn: (envelope: { message: string; status: 1; data: Message & { sendSession: { sid: string; title: string; avatar: string } }; type: 'user' }) => void): () => void;
  onError(fn: (err: Error) => void): () => void;
  onDisconnected(fn: (reason: Error) => void): () => void;
}

export default ChatdClient;

// --- groups and profiles (docs/groups.md) ---

export type GroupRole = 'owner' | 'admin' | 'member';

export interface Group {
  groupId: string;
  name: string;
  avatarUri: string;
  notice: string;
  /** App-defined JSON object (at most 4 KiB). */
  extra: Record<string, unknown>;
  ownerId: string;
  memberCount: number;
  muteAll: boolean;
  dismissed: boolean;
  /** ms since epoch */
  createdAt: number;
  /** The caller's own membership. */
  role?: GroupRole;
  joinedAt?: number;
  sid?: string;
}

export interface GroupMember {
  userId: string;
  name: string;
  avatarUri: string;
  role: GroupRole;
  /** ms since epoch */
  joinedAt: number;
  /** ms since epoch, when muted */
  mutedUntil?: number;
}

export interface MembersPage {
  members: GroupMember[];
  /** Pass back for the next page; "" at the end. */
  cursor: string;
}

export interface Profile {
  userId: string;
  name: string;
  avatarUri: string;
  extra: Record<string, unknown>;
}

export type GroupEventKind = 'joined' | 'left' | 'removed' | 'renamed' | 'avatar' | 'notice' | 'admins' | 'owner'
  | 'muted' | 'unmuted' | 'muteAll' | 'dismissed';

/** The content of a MessageType.NOTICE message. */
export interface NoticeContent {
  /** Text to show. */
  content: string;
  event: GroupEventKind;
  groupId: string;
  /** Who acted; "" for the app backend. */
  operatorId: string;
  userIds?: string[];
  [detail: string]: unknown;
}

export interface GroupEvent {
  groupId: string;
  event: GroupEventKind;
  userIds: string[];
  /** The notice stored in the group. */
  message: Message;
}

export interface GroupChanges {
  name?: string;
  avatarUri?: string;
  notice?: string;
  extra?: Record<string, unknown>;
}

export declare interface ChatdClient {
  groupInfo(groupId: string): Promise<Group>;
  groupMembers(groupId: string, options?: { limit?: number; cursor?: string }): Promise<MembersPage>;
  myGroups(): Promise<Group[]>;
  leaveGroup(groupId: string): Promise<void>;
  /** Owners and admins, where the app allows socket management (CHATD_GROUP_SOCKET_MANAGE). */
  addGroupMembers(groupId: string, userIds: string[]): Promise<void>;
  removeGroupMembers(groupId: string, userIds: string[]): Promise<void>;
  updateGroup(groupId: string, changes: GroupChanges): Promise<Group>;
  /** Profiles of the caller and of users who share a conversation with them. */
  userInfo(userIds: string[]): Promise<Profile[]>;
export interface SearchOptions {
  /** Only this conversation. */
  sid?: string;
  senderUserId?: string;
  messageType?: number;
  /** The `next` of the previous page. */
  before?: string;
  limit?: number;
}

export interface SearchHit extends Message {
  /** This user's session of the hit's conversation. */
  sid: string;
  /** Up to 80 characters around the first match, "…" where cut. */
  snippet: string;
  /** [start, end) of each match in snippet, in UTF-16 code units. */
  highlights: [number, number][];
}

export interface SearchResult {
  hits: SearchHit[];
  /** Present when the page is full, or partial: the before of the next page. */
  next?: string;
  /** The search stopped at its bound of examined messages: more hits may follow from next. */
  partial?: boolean;
}

/** A user's own settings of a conversation (session-updated, updateSession, hide). */
export interface SessionSettings {
  sid: string;
  pinned: boolean;
  /** Unix ms of the pin; the most recent pin lists first. */
  pinnedAt?: number;
  muted: boolean;
  /** Hidden until the next message. */
  hidden: boolean;
  draft: string;
}
