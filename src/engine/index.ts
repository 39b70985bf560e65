/** The engine's public surface: what the HTTP app, the webhook runner and the runtimes may use. */
export { createEngine } from "./pitstop.ts";
export type {
  AckOutcome,
  ConsumeOptions,
  Delivery,
  EngineOptions,
  Health,
  LifecycleDetail,
  LatenessDetail,
  LatenessSummary,
  Listener,
  ListenOptions,
  ListOptions,
  MessagePage,
  MessageView,
  NackOptions,
  Pitstop,
  PolicyInput,
  TopicPolicy,
  TopicView,
  PitstopEventMap,
  PitstopEventName,
  ScheduleInput,
  ScheduleOutcome,
  Scheduled,
} from "./api.ts";
export { checkCount, checkHttpUrl, checkMessage, checkName, messageProblem, nameProblem } from "./checks.ts";
export { systemClock, type Clock } from "./clock.ts";

