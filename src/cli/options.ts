// The CLI's options as a typed table, parsed without spawning anything
// (test/cli-options.test.ts calls parseCli directly).

import { PincohError } from '../errors.js';
import { BOUNDS, DEFAULTS } from '../defaults.js';
import { traceHelp } from '../trace.js';

/** Limits a coordinator enforces; each has a flag of run and serve. */
export interface LimitOptions {
  maxFrame?: number;
  maxRegistrations?: number;
  maxAttachments?: number;
  maxNames?: number;
  maxPending?: number;
}

/** Where GET /metrics is served (--metrics HOST:PORT). */
export interface MetricsAddress {
  host: string;
  port: number;
}

export interface RunOptions extends LimitOptions {
  command: 'run';
  metrics?: MetricsAddress;
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
  metrics?: MetricsAddress;
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
  /** its messages go here, the summary so far kept as the last line (pincoh exec's node log) */
  log?: string;
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

export interface StatusOptions {
  command: 'status';
  /** undefined: the coordinators of this user found under the temporary directory */
  socket?: string;
  json: boolean;
  watch: boolean;
  intervalMs: number;
}

export interface ReportOptions {
  command: 'report';
  traces: string[];
  output: string;
}

export interface HelpOptions {
  command: 'help';
  /** help for one command, or the trace's fields */
  topic?: HelpTopic;
}

export interface VersionOptions {
  command: 'version';
}

export type CliOptions = RunOptions | ServeOptions | ExecOptions | AuditOptions | StatusOptions | ReportOptions | HelpOptions | VersionOptions;

const LIMITS_HELP = `limits (the coordinator's):
  --max-frame BYTES         the largest frame a process may send (${DEFAULTS.maxFrame}; at least ${BOUNDS.maxFrame[0]})
  --max-registrations N     registrations per process (1 to ${BOUNDS.maxRegistrations[1]}, the default)
  --max-attachments N       attachments per process (1 to ${BOUNDS.maxAttachments[1]}, the default)
  --max-names N             published names per job (${DEFAULTS.limits.namesPerJob})
  --max-pending N           waiting requests per connection before -EAGAIN (${DEFAULTS.maxPending})`;

const POLICY_HELP = `policies (told to every process at connection):
  --mremap invalidate|follow  mremap invalidates what it moves (default), or moves it
  --fork keep|dontfork        fork's children keep registered pages (default), or not (MADV_DONTFORK)
  --free keep|invalidate      free()/realloc() leave registrations to the mapping (default), or invalidate them
  --no-coherence              never revoke attachments: shows the corruption pincoh prevents`;

const SHIM_ENV = `environment of the processes (set by run and exec; docs/reference.md, Environment):
  PINCOH_SOCKET, PINCOH_RANK, PINCOH_SIZE, PINCOH_JOB, PINCOH_TIMEOUT_MS (1-3600000, 2000),
  PINCOH_ON_TIMEOUT (proceed|abort), PINCOH_QUIET=1, PINCOH_LIBC (patch|norelease|off)
environment of pincoh:
  PINCOH_SHIM               the libpincoh.so to preload (default: the one npm install built)
  TMPDIR                    where run's private socket directories and exec's job directories go`;

/** What a command exits with on a usage or set-up error, naming the codes it can give. */
const errors = (...codes: string[]) => `2 on a usage or set-up error, named with its code (PINCOH_ERR_USAGE, ${codes.join(', ')})`;
const SETUP = ['PINCOH_ERR_SHIM_MISSING', 'PINCOH_ERR_SOCKET_PATH', 'PINCOH_ERR_TRACE', 'PINCOH_ERR_METRICS'];

/** pincoh help COMMAND, pincoh COMMAND --help: options, environment, exit codes. */
export type HelpTopic = Command | 'trace';

export const HELP: Record<HelpTopic, string> = {
  run: `usage: pincoh run [-n N] [options] -- CMD [ARGS...]
Starts a coordinator on a private socket, runs N ranks of CMD under the shim,
prints a one-line summary on stderr, and exits with the worst rank's status.
  -n, --ranks N             ranks (1 to ${BOUNDS.ranks[1]}; default 1)
  --trace FILE|-            one JSON line per event (pincoh help trace: the fields)
  --metrics HOST:PORT       serve GET /metrics (Prometheus text) while the job runs; HOST defaults to 127.0.0.1
  --timeout-ms MS           the ranks' PINCOH_TIMEOUT_MS (1 to ${BOUNDS.timeoutMs[1]}); revokes wait half of it (at most ${DEFAULTS.revokeTimeoutMs})
  --audit                   check each process's registrations against /proc/PID/maps as it exits
  --abort-on-failure        a rank killed or exiting non-zero ends the others, as mpirun does
  --preload LIB             another library for the ranks' LD_PRELOAD (a sanitizer runtime goes first)
  -q, --quiet               no socket line and no summary
${POLICY_HELP}
${LIMITS_HELP}
The socket is printed at start (pincoh status --socket PATH watches the job).
${SHIM_ENV}
exit status:
  the worst rank's (a signal: 128 + its number; a command that cannot start: 127)
  3: --audit found registrations no longer mapped, and no rank failed
  ${errors(...SETUP)}`,
  serve: `usage: pincoh serve --socket PATH [options]
Runs the coordinator alone until SIGINT, SIGTERM or SIGHUP; processes connect with
LD_PRELOAD=<libpincoh.so> PINCOH_SOCKET=PATH.
  --socket PATH             where to listen (its directory is made 0700; a stale socket is replaced)
  --trace FILE|-            one JSON line per event
  --metrics HOST:PORT       serve GET /metrics (Prometheus text); HOST defaults to 127.0.0.1
  --revoke-timeout-ms MS    how long a put in flight may hold a revoke before its process is killed (${DEFAULTS.revokeTimeoutMs})
  --allow-uid UID           admit processes of this uid too (repeatable)
  --until-ranks N           (pincoh exec's node coordinator) end once N ranks announced beside the socket have gone
  --idle-exit-ms MS         with --until-ranks: end after MS with nothing running (${DEFAULTS.idleExitMs})
  --log FILE                messages to FILE, its last line the summary so far, rewritten as it changes
${POLICY_HELP}
${LIMITS_HELP}
exit status:
  0 after a signal
  ${errors(...SETUP, 'PINCOH_ERR_SOCKET_IN_USE')}`,
  exec: `usage: pincoh exec [options] -- CMD [ARGS...]
One rank under a launcher (mpirun, srun, mpiexec): finds or starts this node's
coordinator for the job, then becomes CMD under the shim.
  --trace                   the node's trace beside its log
  --output-dir DIR          where pincoh-HOST-JOB.log (and .trace.jsonl) go, made if missing
                            (PINCOH_OUTPUT_DIR, else the working directory)
  --timeout-ms MS           PINCOH_TIMEOUT_MS (1 to ${BOUNDS.timeoutMs[1]})
  --idle-exit-ms MS         the node's coordinator ends after MS with nothing running (${DEFAULTS.idleExitMs})
  --metrics HOST:PORT       the node's coordinator serves GET /metrics there
${POLICY_HELP}
${LIMITS_HELP}
environment read: the launcher's (OMPI_COMM_WORLD_*, PMIX_*, SLURM_*, PMI_*); sets
PINCOH_GLOBAL_RANK and PINCOH_GLOBAL_SIZE besides the node-local PINCOH_RANK and PINCOH_SIZE
exit status:
  CMD's own (it becomes CMD); 127 if CMD is not found, 126 if it cannot run (PINCOH_ERR_EXEC)
  ${errors('PINCOH_ERR_LAUNCHER', 'PINCOH_ERR_COORDINATOR', 'PINCOH_ERR_SHIM_MISSING')}`,
  status: `usage: pincoh status [--socket PATH] [--json] [--watch [--interval-ms MS]]
What a running coordinator sees: each process (pid, rank, command, libc coverage,
degraded, registrations and bytes, exports, attachments) and the job-wide counts and rates.
Without --socket: lists the coordinators of this user under the temporary directory.
  --socket PATH             the coordinator's socket (pincoh run prints it; PINCOH_SOCKET)
  --json                    one JSON document (docs/watching.md, pincoh status)
  --watch                   redraw in place every --interval-ms (${DEFAULTS.statusIntervalMs}) until Ctrl-C
exit status:
  0
  ${errors('PINCOH_ERR_COORDINATOR: none found, several found with --watch, or nothing listens at PATH')}`,
  report: `usage: pincoh report TRACE... -o FILE.html
Reads traces written by --trace and writes one self-contained HTML page: a timeline
per process, invalidations by cause, revokes and cut-offs, latency histograms, the
worst moments. Opens from file:// with no network.
exit status:
  0
  ${errors('PINCOH_ERR_TRACE: a trace that cannot be read, a malformed line, a page that cannot be written')}`,
  audit: `usage: pincoh audit --socket PATH [PID]
Asks a running coordinator which registrations of PID (or of every process) are no
longer mapped as registered.
exit status:
  0 none; 1 findings; 2 the pid is not connected
  ${errors('PINCOH_ERR_COORDINATOR: nothing listens at PATH')}`,
  help: `usage: pincoh help [COMMAND|trace]`,
  trace: traceHelp(),
  version: `usage: pincoh --version`,
};

export const USAGE = `usage: pincoh COMMAND [options] (pincoh help COMMAND for its options, environment and exit codes)
  pincoh run [-n N] [options] -- CMD [ARGS...]   a job of N ranks under a coordinator of its own
  pincoh serve --socket PATH [options]           a coordinator alone, until a signal
  pincoh exec [options] -- CMD [ARGS...]         one rank under mpirun, srun or mpiexec
  pincoh status [--socket PATH] [--json] [--watch]   what a running coordinator sees
  pincoh report TRACE... -o FILE.html            a page to look at, from traces
  pincoh audit --socket PATH [PID]               stale registrations of live processes
  pincoh help [COMMAND|trace] | pincoh --version`;

/** How long a put in flight may hold a revoke, given the ranks' PINCOH_TIMEOUT_MS: half of it
 * (at most the default, 1 s), so the owner's own wait for the coordinator never runs out first. */
export function revokeTimeoutFor(timeoutMs: number = DEFAULTS.shimTimeoutMs): number {
  return Math.max(1, Math.min(DEFAULTS.revokeTimeoutMs, Math.floor(timeoutMs / 2)));
}

type Kind = 'int' | 'string' | 'flag' | 'mremap' | 'fork' | 'free' | 'hostport';
export type Command = 'run' | 'serve' | 'exec' | 'audit' | 'status' | 'report' | 'help' | 'version';
const COMMANDS: readonly Command[] = ['run', 'serve', 'exec', 'audit', 'status', 'report', 'help', 'version'];
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
  { names: ['--log'], key: 'log', kind: 'string', commands: ['serve'] },
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
  { names: ['--socket'], key: 'socket', kind: 'string', commands: ['serve', 'audit', 'status'] },
  { names: ['--metrics'], key: 'metrics', kind: 'hostport', commands: ['run', 'serve', 'exec'] },
  { names: ['--json'], key: 'json', kind: 'flag', commands: ['status'] },
  { names: ['--watch'], key: 'watch', kind: 'flag', commands: ['status'] },
  { names: ['--interval-ms'], key: 'intervalMs', kind: 'int', commands: ['status'] },
  { names: ['-o', '--output'], key: 'output', kind: 'string', commands: ['report'] },
  { names: ['--audit'], key: 'audit', kind: 'flag', commands: ['run'] },
  { names: ['--abort-on-failure'], key: 'abortOnFailure', kind: 'flag', commands: ['run'] },
  { names: ['--preload'], key: 'preload', kind: 'string', commands: ['run'], repeat: true },
  { names: ['--allow-uid'], key: 'allowUids', kind: 'int', commands: ['serve'], repeat: true },
];

const usage = (msg: string, command?: Command): PincohError =>
  new PincohError('PINCOH_ERR_USAGE', `${msg}\n${command && command !== 'help' && command !== 'version' ? HELP[command].split('\n')[0] + ` (pincoh help ${command})` : USAGE}`);


/** HOST:PORT, :PORT or PORT; the host defaults to loopback (metrics are not for the world unless asked). */
export function parseHostPort(raw: string, name = '--metrics', command?: Command): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:\s]*):)?(\d{1,5})$/.exec(raw);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw usage(`${name} takes HOST:PORT or PORT (a port from 0 to 65535; 0: the system chooses), not '${raw}'`, command);
  const host = m[1] ? m[1].replace(/^\[|\]$/g, '') : '127.0.0.1';
  return { host, port };
}

export function parseCli(args: string[]): CliOptions {
  const [first, ...rest] = args;
  if (first === '--version' || first === '-V' || first === '-v') return { command: 'version' };
  if (first === undefined || first === '--help' || first === '-h') return { command: 'help' };
  const command = first as Command;
  if (!COMMANDS.includes(command)) throw usage(`unknown command '${first}'`);
  if (command === 'version') return { command };
  if (command === 'help') {
    const topics: string[] = [...COMMANDS, 'trace'];
    if (rest.length > 1 || (rest[0] !== undefined && !topics.includes(rest[0]))) throw usage(`help takes one of ${topics.join(', ')}`);
    return rest[0] ? { command, topic: rest[0] as HelpTopic } : { command };
  }
  const values: Record<string, unknown> = { allowUids: [], preload: [] };
  let argv: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === '--') {
      argv = rest.slice(i + 1);
      break;
    }
    if (arg === '--help' || arg === '-h') return { command: 'help', topic: command };
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const spec = SPECS.find((s) => s.names.includes(name) && s.commands.includes(command));
    if (!spec) {
      if (command === 'report' && !arg.startsWith('-')) {
        ((values.traces ??= []) as string[]).push(arg); // traces and options in any order
        continue;
      }
      if ((command === 'run' || command === 'exec' || command === 'audit') && !arg.startsWith('-')) {
        argv = rest.slice(i); // `pincoh run ./prog args` without --; audit's PID
        break;
      }
      throw usage(`unknown option '${arg}' for ${command}`, command);
    }
    if (spec.kind === 'flag') {
      values[spec.key] = true;
      continue;
    }
    const raw = inline ?? rest[++i];
    // `--trace -- CMD` is a forgotten value, not a file named --
    if (raw === undefined || (inline === undefined && raw.startsWith('-') && raw !== '-')) throw usage(`${name} needs a value`, command);
    let v: unknown = raw;
    if (spec.kind === 'int') {
      if (!/^\d+$/.test(raw)) throw usage(`${name} takes a whole number, not '${raw}'`, command);
      v = Number(raw);
      const [lo, hi] = (BOUNDS as Record<string, readonly [number, number]>)[spec.key] ?? [0, Number.MAX_SAFE_INTEGER];
      if ((v as number) < lo || (v as number) > hi) throw usage(`${name} takes ${lo} to ${hi}, not ${raw}`, command);
    } else if (spec.kind === 'hostport') parseHostPort(raw, name, command); // checked now, kept as given (exec passes it on)
    else if (spec.kind === 'mremap' && raw !== 'invalidate' && raw !== 'follow') throw usage(`--mremap takes invalidate or follow, not '${raw}'`, command);
    else if (spec.kind === 'fork' && raw !== 'keep' && raw !== 'dontfork') throw usage(`--fork takes keep or dontfork, not '${raw}'`, command);
    else if (spec.kind === 'free' && raw !== 'keep' && raw !== 'invalidate') throw usage(`--free takes keep or invalidate, not '${raw}'`, command);
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
  const metrics = values.metrics === undefined ? undefined : parseHostPort(values.metrics as string);
  if (command === 'run') {
    const ranks = (values.ranks as number | undefined) ?? 1;
    if (argv.length === 0) throw usage('run needs a command after --', command);
    return {
      command, ranks, trace, mremap, fork, free, coherence, audit: values.audit === true, abortOnFailure: values.abortOnFailure === true, preload: values.preload as string[],
      timeoutMs: values.timeoutMs as number | undefined, quiet: values.quiet === true, argv, ...(metrics && { metrics }), ...limits,
    };
  }
  if (command === 'exec') {
    if (argv.length === 0) throw usage('exec needs a command after --', command);
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
    if (typeof values.socket !== 'string') throw usage('audit needs --socket PATH', command);
    if (argv.length > 1 || (argv[0] !== undefined && !/^\d+$/.test(argv[0]))) throw usage('audit takes at most one PID', command);
    return { command, socket: values.socket, pid: argv[0] ? Number(argv[0]) : 0 };
  }
  if (command === 'status') {
    if (values.intervalMs !== undefined && values.watch !== true) throw usage('--interval-ms goes with --watch', command);
    return { command, socket: values.socket as string | undefined, json: values.json === true, watch: values.watch === true, intervalMs: (values.intervalMs as number | undefined) ?? DEFAULTS.statusIntervalMs };
  }
  if (command === 'report') {
    const traces = (values.traces as string[] | undefined) ?? [];
    if (traces.length === 0) throw usage('report needs at least one trace file', command);
    if (typeof values.output !== 'string') throw usage('report needs -o FILE.html', command);
    return { command, traces, output: values.output };
  }
  if (typeof values.socket !== 'string') throw usage('serve needs --socket PATH', command);
  if (argv.length) throw usage('serve takes no command', command);
  if (values.idleExitMs !== undefined && values.untilRanks === undefined) throw usage('--idle-exit-ms goes with --until-ranks', command);
  return {
    command, socket: values.socket, trace, mremap, fork, free, coherence, revokeTimeoutMs: (values.revokeTimeoutMs as number | undefined) ?? DEFAULTS.revokeTimeoutMs, allowUids: values.allowUids as number[],
    untilRanks: values.untilRanks as number | undefined, idleExitMs: values.idleExitMs as number | undefined, ...(typeof values.log === 'string' && { log: values.log }),
    ...(metrics && { metrics }), ...limits,
  };
}
