/**
 * BuildStore and BuildWatcher behaviour in memory for unit tests (one build at a time; the Redis store itself is
 * proven by test/integration/builds.test.ts). `drop` loses the next publication, as a reconnecting subscriber would.
 */
import type { BuildChange, BuildEvent } from '@factory/builds';

export class MemoryBuilds {
  events: BuildEvent[] = [];
  listeners = new Set<(e: BuildEvent) => void>();
  drop = false;
  /** what queuePosition answers */
  position: number | undefined = 0;
  channel = (id: string) => `builds:${id}`;
  async get(): Promise<BuildEvent | undefined> {
    return this.events[this.events.length - 1];
  }
  async change(_id: string, change: BuildChange): Promise<BuildEvent | undefined> {
    const current = this.events[this.events.length - 1];
    const next = change(current?.build, new Date());
    if (!next) return current;
    const e = { n: this.events.length + 1, build: next };
    this.events.push(e);
    if (this.drop) this.drop = false;
    else for (const l of this.listeners) l(e);
    return e;
  }
  async eventsAfter(_id: string, after: number): Promise<BuildEvent[]> {
    return this.events.filter((e) => e.n > after);
  }
  async queuePosition(): Promise<number | undefined> {
    return this.position;
  }
  async watch(_id: string, l: (e: BuildEvent) => void): Promise<() => void> {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}
