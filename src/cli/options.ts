// The CLI's options as a typed table, parsed without spawning anything
// (test/cli-options.test.ts calls parseCli directly).

import { PincohError } from '../errors.js';

/** Limits a coordinator enforces; each has a flag of run and serve. */
export interface LimitOptions {
  maxFrame?: number;
  maxRegistrations?: number;
  maxAttachments?: number;
  maxNames?: number;
  maxPending?: number;
}

export interface RunOptions extends LimitOptions {
  command: 'run';
  ranks: number;
  trace?: string;
  mremap: 'invalidate' | 'follow';
  fork: 'keep' | 'dontfork';
  free: 'keep' | 'invalidate';
  coherence: boolean;
  audit: boolean;
  /** a rank killed by a signal or exiting non-zero ends the others, as mpirun does */
  abortOnFailure: boolean;
  /** more libraries to preload into the ranks (a sanitizer runtime goes in front of the shim) */
  preload: string[];
  timeoutMs?: number;
  quiet: boolean;
  argv: string[];
}

export interface ServeOptions extends LimitOptions {
  command: 'serve';
  socket: string;
  trace?: string;
  mremap: 'invalidate' | 'follow';
  fork: 'keep' | 'dontfork';
  free: 'keep' | 'invalidate';
  coherence: boolean;
  revokeTimeoutMs: number;
  allowUids: number[];
  /** a node's coordinator for pincoh exec: the socket is in the job's directory (src/job/jobdir.ts);
   * end once this many ranks have been announced there and all have gone, then remove it */
  untilRanks?: number;
  /** with untilRanks: end after this long with nothing running (ranks that never came) */
  idleExitMs?: number;
}

export interface ExecOptions {
  command: 'exec';
  argv: string[];
  /** write the node's trace beside its log */
  trace: boolean;
  /** where the node's log (with the summary) and trace go: pincoh-HOST-JOB.log */
  outputDir?: string;
  timeoutMs?: number;
  idleExitMs?: number;
  /** the policy and limit flags, passed on to the node's coordinator when this rank starts it */
  coordinatorArgs: string[];
}

export interface AuditOptions {
  command: 'audit';
  socket: string;
  pid: number;
}

export interface HelpOptions {
  command: 'help';
}

export type CliOptions = RunOptions | ServeOptions | ExecOptions | AuditOptions | HelpOptions;

export const USAGE = `usage:
  pincoh run [-n N] [--trace FILE|-] [--mremap invalidate|follow] [--fork keep|dontfork] [--free keep|invalidate] [--timeout-ms MS]
             [--no-coherence] [--audit] [--abort-on-failure] [--preload LIB]... [--quiet] -- CMD [ARGS...]
      start a coordinator, run N ranks of CMD under the shim, print a summary,
      exit with the worst rank's status; --audit checks each process's
      registrations against /proc/PID/maps as it exits (exit 3 on findings);
      --preload adds a library to the ranks' LD_PRELOAD (a sanitizer runtime goes first);
      --abort-on-failure: a rank killed by a signal or exiting non-zero ends the others
  pincoh serve --socket PATH [--trace FILE|-] [--mremap invalidate|follow] [--fork keep|dontfork] [--free keep|invalidate]
               [--revoke-timeout-ms MS] [--no-coherence] [--allow-uid UID]... [--until-ranks N [--idle-exit-ms MS]]
      run the coordinator alone until SIGINT/SIGTERM/SIGHUP; processes find it through
      PINCOH_SOCKET=PATH and LD_PRELOAD=<libpincoh.so>; --until-ranks: how pincoh exec
      starts a node's coordinator (ends with the ranks announced beside the socket)
  --no-coherence  never revoke attachments: shows the corruption pincoh prevents
  --fork dontfork keep registered pages out of fork's children (MADV_DONTFORK), as ibv_fork_init does
  --free invalidate free() and realloc() invalidate the registrations inside the heap chunk they give back
                  (by default a registration follows the mapping, as the kernel's mmu_notifier does)
  limits (run, serve and exec): --max-frame BYTES (65536) --max-registrations N (1048576 per process)
    --max-attachments N (4096 per process) --max-names N (65536 per job)
    --max-pending N (256 waiting requests per connection)
  pincoh exec [--trace] [--output-dir DIR] [--mremap ...] [--fork ...] [--free ...] [--timeout-ms MS]
              [--idle-exit-ms MS] [--no-coherence] [limits] -- CMD [ARGS...]
      one rank under a launcher (mpirun, srun, mpiexec): finds or starts this node's
      coordinator for the job, then becomes CMD under the shim; pincoh's rank and size
      are the node-local ones (PINCOH_GLOBAL_RANK, PINCOH_GLOBAL_SIZE: the launcher's);
      the node's log and summary: DIR/pincoh-HOST-JOB.log (DIR: the working directory)
  pincoh audit --socket PATH [PID]
      ask a running coordinator which registrations of PID (or of every process)
      are no longer mapped as registered; exit 1 if any
  pincoh help`;

/** How long a put in flight may hold a revoke, given the ranks' PINCOH_TIMEOUT_MS: half of it
 * (at most 1 s), so the owner's own wait for the coordinator never runs out first. */
export function revokeTimeoutFor(timeoutMs = 2000): number {
  return Math.max(1, Math.min(1000, Math.floor(timeoutMs / 2)));
}

type Kind = 'int' | 'string' | 'flag' | 'mremap' | 'fork' | 'free';
type Command = 'run' | 'serve' | 'exec' | 'audit';
interface Spec {
  names: string[];
  key: string;
  kind: Kind;
  commands: Command[];
  repeat?: boolean;
}

const SPECS: Spec[] = [
  { names: ['-n', '--ranks'], key: 'ranks', kind: 'int', commands: ['run'] },
  { names: ['--trace'], key: 'trace', kind: 'string', commands: ['run', 'serve'] },
  { names: ['--trace'], key: 'traceOn', kind: 'flag', commands: ['exec'] },
  { names: ['--output-dir'], key: 'outputDir', kind: 'string', commands: ['exec'] },
  { names: ['--until-ranks'], key: 'untilRanks', kind: 'int', commands: ['serve'] },
  { names: ['--idle-exit-ms'], key: 'idleExitMs', kind: 'int', commands: ['serve', 'exec'] },
  { names: ['--mremap'], key: 'mremap', kind: 'mremap', commands: ['run', 'serve', 'exec'] },
  { names: ['--fork'], key: 'fork', kind: 'fork', commands: ['run', 'serve', 'exec'] },
  { names: ['--free'], key: 'free', kind: 'free', commands: ['run', 'serve', 'exec'] },
  { names: ['--timeout-ms'], key: 'timeoutMs', kind: 'int', commands: ['run', 'exec'] },
  { names: ['--quiet', '-q'], key: 'quiet', kind: 'flag', commands: ['run'] },
  { names: ['--no-coherence'], key: 'noCoherence', kind: 'flag', commands: ['run', 'serve', 'exec'] },
  { names: ['--revoke-timeout-ms'], key: 'revokeTimeoutMs', kind: 'int', commands: ['serve'] },
  { names: ['--max-frame'], key: 'maxFrame', kind: 'int', commands: ['run', 'serve', 'exec'] },
  { names: ['--max-registrations'], key: 'maxRegistrations', kind: 'int', commands: ['run', 'serve', 'exec'] },
  { names: ['--max-attachments'], key: 'maxAttachments', kind: 'int', commands: ['run', 'serve', 'exec'] },
  { names: ['--max-names'], key: 'maxNames', kind: 'int', commands: ['run', 'serve', 'exec'] },
  { names: ['--max-pending'], key: 'maxPending', kind: 'int', commands: ['run', 'serve', 'exec'] },
  { names: ['--socket'], key: 'socket', kind: 'string', commands: ['serve', 'audit'] },
  { names: ['--audit'], key: 'audit', kind: 'flag', commands: ['run'] },
  { names: ['--abort-on-failure'], key: 'abortOnFailure', kind: 'flag', commands: ['run'] },
  { names: ['--preload'], key: 'preload', kind: 'string', commands: ['run'], repeat: true },
  { names: ['--allow-uid'], key: 'allowUids', kind: 'int', commands: ['serve'], repeat: true },
];

const usage = (msg: string): PincohError => new PincohError('PINCOH_ERR_USAGE', `${msg}\n${USAGE}`);

export function parseCli(args: string[]): CliOptions {
  const [command, ...rest] = args;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') return { command: 'help' };
  if (command !== 'run' && command !== 'serve' && command !== 'exec' && command !== 'audit') throw usage(`unknown command '${command}'`);
  const values: Record<string, unknown> = { allowUids: [], preload: [] };
  let argv: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === '--') {
      argv = rest.slice(i + 1);
      break;
    }
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const spec = SPECS.find((s) => s.names.includes(name) && s.commands.includes(command));
    if (!spec) {
      if ((command === 'run' || command === 'exec' || command === 'audit') && !arg.startsWith('-')) {
        argv = rest.slice(i); // `pincoh run ./prog args` without --; audit's PID
        break;
      }
      throw usage(`unknown option '${arg}' for ${command}`);
    }
    if (spec.kind === 'flag') {
      values[spec.key] = true;
      continue;
    }
    const raw = inline ?? rest[++i];
    if (raw === undefined) throw usage(`${name} needs a value`);
    let v: unknown = raw;
    if (spec.kind === 'int') {
      if (!/^\d+$/.test(raw)) throw usage(`${name} takes a whole number, not '${raw}'`);
      v = Number(raw);
    } else if (spec.kind === 'mremap' && raw !== 'invalidate' && raw !== 'follow') throw usage(`--mremap takes invalidate or follow, not '${raw}'`);
    else if (spec.kind === 'fork' && raw !== 'keep' && raw !== 'dontfork') throw usage(`--fork takes keep or dontfork, not '${raw}'`);
    else if (spec.kind === 'free' && raw !== 'keep' && raw !== 'invalidate') throw usage(`--free takes keep or invalidate, not '${raw}'`);
    if (spec.repeat) (values[spec.key] as unknown[]).push(v);
    else values[spec.key] = v;
  }
  const mremap = (values.mremap as 'invalidate' | 'follow' | undefined) ?? 'invalidate';
  const trace = values.trace as string | undefined;
  const coherence = values.noCoherence !== true;
  const fork = (values.fork as 'keep' | 'dontfork' | undefined) ?? 'keep';
  const free = (values.free as 'keep' | 'invalidate' | undefined) ?? 'keep';
  const limits: LimitOptions = {};
  for (const k of ['maxFrame', 'maxRegistrations', 'maxAttachments', 'maxNames', 'maxPending'] as const)
    if (values[k] !== undefined) limits[k] = values[k] as number;
  if (limits.maxFrame !== undefined && limits.maxFrame < 256) throw usage('--max-frame takes at least 256');
  if (command === 'run') {
    const ranks = (values.ranks as number | undefined) ?? 1;
    if (ranks < 1 || ranks > 1024) throw usage(`-n takes 1 to 1024 ranks, not ${ranks}`);
    if (argv.length === 0) throw usage('run needs a command after --');
    return { command, ranks, trace, mremap, fork, free, coherence, audit: values.audit === true, abortOnFailure: values.abortOnFailure === true, preload: values.preload as string[], timeoutMs: values.timeoutMs as number | undefined, quiet: values.quiet === true, argv, ...limits };
  }
  if (command === 'exec') {
    if (argv.length === 0) throw usage('exec needs a command after --');
    // the coordinator this rank may start gets the policies and limits as given
    const coordinatorArgs: string[] = [];
    for (const spec of SPECS)
      if (spec.commands.includes('exec') && spec.commands.includes('serve') && values[spec.key] !== undefined && spec.key !== 'idleExitMs')
        coordinatorArgs.push(...(spec.kind === 'flag' ? [spec.names[0]!] : [spec.names[0]!, String(values[spec.key])]));
    const timeoutMs = values.timeoutMs as number | undefined;
    if (timeoutMs !== undefined) coordinatorArgs.push('--revoke-timeout-ms', String(revokeTimeoutFor(timeoutMs)));
    return { command, argv, trace: values.traceOn === true, outputDir: values.outputDir as string | undefined, timeoutMs, idleExitMs: values.idleExitMs as number | undefined, coordinatorArgs };
  }
  if (command === 'audit') {
    if (typeof values.socket !== 'string') throw usage('audit needs --socket PATH');
    if (argv.length > 1 || (argv[0] !== undefined && !/^\d+$/.test(argv[0]))) throw usage('audit takes at most one PID');
    return { command, socket: values.socket, pid: argv[0] ? Number(argv[0]) : 0 };
  }
  if (typeof values.socket !== 'string') throw usage('serve needs --socket PATH');
  if (argv.length) throw usage('serve takes no command');
  if (values.idleExitMs !== undefined && values.untilRanks === undefined) throw usage('--idle-exit-ms goes with --until-ranks');
  const revokeTimeoutMs = (values.revokeTimeoutMs as number | undefined) ?? 1000;
  if (revokeTimeoutMs < 1) throw usage('--revoke-timeout-ms takes at least 1');
  return {
    command, socket: values.socket, trace, mremap, fork, free, coherence, revokeTimeoutMs, allowUids: values.allowUids as number[],
    untilRanks: values.untilRanks as number | undefined, idleExitMs: values.idleExitMs as number | undefined, ...limits,
  };
}
