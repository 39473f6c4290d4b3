// Reports computed in the background, for the FHIR asynchronous request pattern (Prefer: respond-async; FHIR R4
// "Asynchronous Request Patterns", http://hl7.org/fhir/R4/async.html): a report over many plans can take longer than
// a client or proxy waits for an answer. Jobs live in this process's memory (a client polls the instance that took
// the request: sticky routing behind a load balancer) and are bounded: a few run at once, a few dozen are kept,
// each for a limited time after it ends, and only its owner (the caller that started it) can see or cancel it.
import { randomUUID } from 'node:crypto';
import type { Caller } from '../auth/caller.js';
import type { MeasureResult } from './report.js';

/** Who may see a job: the same client, user and patient restriction as the request that started it. */
export function jobOwner(caller: Caller | undefined): string {
  if (!caller || caller.kind === 'anonymous') return 'anonymous';
  return JSON.stringify([caller.clientId, caller.subject, caller.patient]);
}

export type JobState =
  | { state: 'running'; plansRead: number }
  | { state: 'done'; result: MeasureResult }
  | { state: 'failed'; error: unknown };

interface Job {
  owner: string;
  status: JobState;
  controller: AbortController;
  endedAt?: number;
}

export interface ReportJobsOptions {
  /** Jobs running at once (each pages through the FHIR server). */
  maxRunning?: number;
  /** Jobs kept (running and ended); past it the oldest ended one is dropped, or a new job is refused. */
  maxKept?: number;
  /** How long an ended job's answer is kept. */
  keepMs?: number;
  /** Reports computed at once while their callers wait (each pages through the FHIR server as a job does). */
  maxInline?: number;
}

export class TooManyJobs extends Error {}

export class ReportJobs {
  private readonly jobs = new Map<string, Job>();
  /** Tunable after construction (tests). */
  maxRunning: number;
  maxKept: number;
  keepMs: number;
  maxInline: number;
  private inline = 0;

  constructor(options: ReportJobsOptions = {}) {
    this.maxRunning = options.maxRunning ?? 2;
    this.maxKept = options.maxKept ?? 20;
    this.keepMs = options.keepMs ?? 10 * 60_000;
    this.maxInline = options.maxInline ?? 4;
  }

  /**
   * Computes a report while its caller waits, refused (TooManyJobs) when `maxInline` already are: without a bound,
   * callers could start any number of full scans of the FHIR server at once.
   */
  async runInline(run: () => Promise<MeasureResult>): Promise<MeasureResult> {
    if (this.inline >= this.maxInline) throw new TooManyJobs(`${this.inline} reports are being computed`);
    this.inline++;
    try {
      return await run();
    } finally {
      this.inline--;
    }
  }

  /**
   * Starts `run` in the background and returns the job's id; refused (TooManyJobs) when too many run or are kept.
   * `run` gets a signal (aborted by cancel) and a progress callback (plans read so far).
   */
  start(
    owner: string,
    run: (signal: AbortSignal, progress: (plansRead: number) => void) => Promise<MeasureResult>,
  ): string {
    this.expire();
    const running = [...this.jobs.values()].filter((j) => j.status.state === 'running').length;
    if (running >= this.maxRunning) throw new TooManyJobs(`${running} reports are being computed`);
    if (this.jobs.size >= this.maxKept) {
      const oldestEnded = [...this.jobs.entries()].find(([, j]) => j.endedAt !== undefined);
      if (!oldestEnded) throw new TooManyJobs('too many reports are kept');
      this.jobs.delete(oldestEnded[0]);
    }
    const id = randomUUID();
    const job: Job = { owner, status: { state: 'running', plansRead: 0 }, controller: new AbortController() };
    this.jobs.set(id, job);
    const progress = (plansRead: number) => {
      if (job.status.state === 'running') job.status = { state: 'running', plansRead };
    };
    run(job.controller.signal, progress).then(
      (result) => this.end(job, { state: 'done', result }),
      (error) => this.end(job, { state: 'failed', error }),
    );
    return id;
  }

  /** The job's state, for its owner only: anyone else's job, or an unknown or expired one, is undefined. */
  get(owner: string, id: string): JobState | undefined {
    this.expire();
    const job = this.jobs.get(id);
    return job && job.owner === owner ? job.status : undefined;
  }

  /** Cancels (or forgets) the owner's job; false when there is no such job of this owner. */
  cancel(owner: string, id: string): boolean {
    const job = this.jobs.get(id);
    if (!job || job.owner !== owner) return false;
    job.controller.abort();
    this.jobs.delete(id);
    return true;
  }

  private end(job: Job, status: JobState): void {
    job.status = status;
    job.endedAt = Date.now();
  }

  private expire(): void {
    const now = Date.now();
    for (const [id, job] of this.jobs)
      if (job.endedAt !== undefined && now - job.endedAt > this.keepMs) this.jobs.delete(id);
  }
}
