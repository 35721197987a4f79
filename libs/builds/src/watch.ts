/**
 * Live builds for followers on this process (SSE clients): one Redis subscriber connection per process, one channel
 * subscription per build followed here (however many clients follow it), and `followBuild`, which turns the
 * revisions of a build into an ordered, gap-free sequence of events — replayed from the build's stream after a
 * Last-Event-ID, then live — ending with the first done or failed.
 */
import type IORedis from 'ioredis';
import { isTerminal } from './record';
import type { BuildEvent, BuildStore } from './store';

type Listener = (e: BuildEvent) => void;

export class BuildWatcher {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly subscriptions = new Map<string, Promise<unknown>>();

  /** `subscriber`: a connection of its own (it enters subscriber mode), retrying forever. */
  constructor(
    private readonly subscriber: IORedis,
    private readonly store: Pick<BuildStore, 'channel'>,
  ) {
    subscriber.on('message', (channel: string, message: string) => {
      const listeners = this.listeners.get(channel);
      if (!listeners?.size) return;
      const space = message.indexOf(' ');
      let event: BuildEvent;
      try {
        event = { n: Number(message.slice(0, space)), build: JSON.parse(message.slice(space + 1)) };
      } catch {
        return;
      }
      for (const l of listeners) l(event);
    });
  }

  /** Builds followed on this process right now. */
  get followed(): number {
    return this.listeners.size;
  }

  /** Calls `listener` with every revision of build `id` published from now on; resolves once subscribed. */
  async watch(id: string, listener: Listener): Promise<() => void> {
    const channel = this.store.channel(id);
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      this.subscriptions.set(channel, this.subscriber.subscribe(channel));
    }
    set.add(listener);
    try {
      await this.subscriptions.get(channel);
    } catch (err) {
      this.unwatch(channel, listener);
      throw err;
    }
    return () => this.unwatch(channel, listener);
  }

  private unwatch(channel: string, listener: Listener): void {
    const set = this.listeners.get(channel);
    if (!set?.delete(listener) || set.size) return;
    this.listeners.delete(channel);
    this.subscriptions.delete(channel);
    void this.subscriber.unsubscribe(channel).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.subscriber.disconnect();
  }
}

export interface FollowOptions {
  store: Pick<BuildStore, 'get' | 'eventsAfter'>;
  watcher: Pick<BuildWatcher, 'watch'>;
  id: string;
  /** Last-Event-ID: replay what came after it; undefined: start with the current record */
  after?: number;
  emit: (e: BuildEvent) => void;
  signal: AbortSignal;
  /** how often the record is read again in case a publication was missed (a reconnect of the subscriber) */
  pollMs?: number;
}

/**
 * Emits the build's events in order without gaps (a missed publication is read from its stream) until one is done or
 * failed ('ended'), the signal aborts ('aborted'), or the build is unknown ('unknown', nothing emitted).
 */
export async function followBuild(o: FollowOptions): Promise<'ended' | 'aborted' | 'unknown'> {
  let last = o.after ?? 0;
  let ended = false;
  const live: BuildEvent[] = [];
  let wake: () => void = () => undefined;
  const unwatch = await o.watcher.watch(o.id, (e) => {
    live.push(e);
    wake();
  });
  const send = (events: BuildEvent[]) => {
    for (const e of events) {
      if (ended || e.n <= last) continue;
      o.emit(e);
      last = e.n;
      if (isTerminal(e.build)) ended = true;
    }
  };
  const catchUp = async () => send(await o.store.eventsAfter(o.id, last));
  try {
    const current = await o.store.get(o.id);
    if (!current) return 'unknown';
    // an id beyond the record's (one of an expired record of the same build): start over with the current state
    if (o.after === undefined || o.after > current.n) {
      last = 0;
      send([current]);
    } else {
      await catchUp();
      // reconnected after the end: nothing more will come
      if (isTerminal(current.build) && current.n <= last) ended = true;
    }
    while (!ended && !o.signal.aborted) {
      if (!live.length) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, o.pollMs ?? 15_000);
          o.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        clearTimeout(timer);
        wake = () => undefined;
      }
      const batch = live.splice(0);
      if (!batch.length) {
        const now = await o.store.get(o.id);
        if (now && now.n > last) await catchUp();
        continue;
      }
      for (const e of batch) {
        if (e.n > last + 1) await catchUp();
        send([e]);
      }
    }
    return ended ? 'ended' : 'aborted';
  } finally {
    unwatch();
  }
}
