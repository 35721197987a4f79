import type { JobsOptions } from 'bullmq';

/**
 * Completed jobs are kept for a while so that waitUntilFinished never races a deletion and so that a repeated
 * deterministic jobId finds its answer; failed ones stay longer for inspection. Transient failures are retried
 * with exponential backoff; permanent ones are Replies and never fail the job.
 */
export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: 300, count: 5000 },
  removeOnFail: { age: 24 * 3600, count: 5000 },
};
