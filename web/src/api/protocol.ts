/*
 * The API objects and progress protocol v1 types, and their parsers: the
 * litchi-client package's (clients/js/src/protocol.ts), re-exported so the
 * app's components import them from one familiar place.
 */
export {
  decodeServerFrame,
  emptyCounts,
  FAILURE_REASONS,
  finishedCount,
  isActiveJob,
  parseItem,
  parseJob,
  parseServerMessage,
  percentFinished,
} from 'litchi-client'
export type {
  ClientMessage,
  Counts,
  ErrorMessage,
  FailureReason,
  HelloMessage,
  Item,
  ItemMessage,
  ItemsResetMessage,
  ItemState,
  Job,
  JobEventMessage,
  JobState,
  PongMessage,
  ProgressMessage,
  SequencedMessage,
  ServerMessage,
  SnapshotMessage,
  SubscriptionMessage,
} from 'litchi-client'
