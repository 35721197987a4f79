import type { Logger } from '@factory/telemetry';

/**
 * Graceful shutdown: on SIGTERM/SIGINT run the closers in order (stop taking jobs, let running ones finish, close
 * connections), then exit. A second signal, or the deadline passing, exits at once.
 */
export function onShutdown(logger: Logger, closers: Array<() => Promise<unknown> | unknown>, deadlineMs = 30_000): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error('shutdown deadline passed, exiting');
      process.exit(1);
    }, deadlineMs);
    timer.unref();
    for (const close of closers) {
      try {
        await close();
      } catch (err) {
        logger.warn({ err }, 'error during shutdown');
      }
    }
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/** Start-up failures (bad config, unreachable dependencies) print one readable line and exit non-zero. */
export function fatal(service: string, err: unknown): never {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${service}: ${msg}\n`);
  process.exit(1);
}
