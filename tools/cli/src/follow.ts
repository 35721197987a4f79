/**
 * Waiting for builds: one event stream per unfinished build (reconnecting with Last-Event-ID inside the client), a
 * progress line per build on a terminal, the final Build of each in the order given.
 */
import { Build, FactoryClient, isFinished } from '@factory/client';
import { buildLine, ProgressLines } from './progress';

export async function followBuilds(client: FactoryClient, builds: Build[], progress: ProgressLines): Promise<Build[]> {
  const latest = [...builds];
  const width = Math.max(...builds.map((b) => label(b).length));
  const render = (force = false) => progress.update(latest.map((b) => buildLine(label(b).padEnd(width), b)), force);
  render(true);
  try {
    await Promise.all(
      builds.map(async (start, i) => {
        if (isFinished(start)) return;
        for await (const build of client.buildEvents(start.id)) {
          latest[i] = build;
          render(isFinished(build));
        }
      }),
    );
  } finally {
    progress.finish();
  }
  return latest;
}

/** `<asset>` alone, or `<version> <asset>` when a request covers several versions (labels must tell builds apart). */
function label(b: Build): string {
  return `${b.version} ${b.asset}`;
}
