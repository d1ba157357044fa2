// Where a rank started by someone else's launcher stands: its rank and the
// job's size, its place among the ranks on this node, and the job's id, read
// from the variables each launcher sets. pincoh's own rank and size (the
// barrier, the names) are the node-local ones: sharing is node-local.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PincohError } from '../errors.js';
import { runningSince } from './ended.js';

export interface Placement {
  launcher: 'Open MPI' | 'Slurm' | 'MPICH Hydra' | 'PMIx';
  rank: number;
  size: number;
  localRank: number;
  localSize: number;
  /** the job as the launcher names it: the same for every rank of the job, different for another job */
  job: string;
}

type Env = Record<string, string | undefined>;

const int = (env: Env, name: string): number | undefined => {
  const v = env[name];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
};

/** SLURM_STEP_TASKS_PER_NODE ("2(x3),1": 2 tasks on each of 3 nodes, then 1) at node index `node`. */
export function slurmTasksOn(spec: string, node: number): number | undefined {
  let at = 0;
  for (const part of spec.split(',')) {
    const m = part.match(/^(\d+)(?:\(x(\d+)\))?$/);
    if (!m) return undefined;
    const count = m[2] ? Number(m[2]) : 1;
    if (node < at + count) return Number(m[1]);
    at += count;
  }
  return undefined;
}

const LOOKED_FOR = [
  'Open MPI: OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE, OMPI_MCA_ess_base_jobid or PMIX_NAMESPACE',
  'Slurm: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODEID, SLURM_STEP_TASKS_PER_NODE, SLURM_JOB_ID, SLURM_STEP_ID',
  'MPICH Hydra: PMI_RANK, PMI_SIZE, MPI_LOCALRANKID, MPI_LOCALNRANKS, and PMI_KVSNAME, PINCOH_JOB or a parent hydra_pmi_proxy',
  'PMIx: PMIX_RANK, PMIX_NAMESPACE, and PINCOH_LOCAL_RANK, PINCOH_LOCAL_SIZE (PMIx does not put the local ones in the environment)',
];

/**
 * Hydra puts no job id in a rank's environment (its KVS name is asked for
 * over PMI_FD, which is the program's, not ours to use). Its proxy, one per
 * node per job, is the rank's parent when the launcher starts pincoh exec
 * directly: the proxy's pid and start time name the job on this node.
 */
export function hydraProxyJob(ppid = process.ppid): string | undefined {
  try {
    if (readFileSync(`/proc/${ppid}/comm`, 'utf8').trim() !== 'hydra_pmi_proxy') return undefined;
  } catch {
    return undefined;
  }
  const since = runningSince(ppid);
  return since ? `hydra-${ppid}-${since}` : undefined;
}

/** The placement the environment describes; PINCOH_JOB, if set, names the job instead. Throws PINCOH_ERR_LAUNCHER naming what it looked for.
 * hydraJob: where Hydra's job is named, lacking PMI_KVSNAME (hydraProxyJob; tests give their own). */
export function placementFrom(env: Env, hydraJob: () => string | undefined = hydraProxyJob): Placement {
  const job = (fallback: string | undefined) => env.PINCOH_JOB || fallback;
  let p: Partial<Placement> | undefined;
  if (env.OMPI_COMM_WORLD_RANK !== undefined)
    p = {
      launcher: 'Open MPI',
      rank: int(env, 'OMPI_COMM_WORLD_RANK'),
      size: int(env, 'OMPI_COMM_WORLD_SIZE'),
      localRank: int(env, 'OMPI_COMM_WORLD_LOCAL_RANK'),
      localSize: int(env, 'OMPI_COMM_WORLD_LOCAL_SIZE'),
      job: job(env.OMPI_MCA_ess_base_jobid ?? env.PMIX_NAMESPACE),
    };
  else if (env.SLURM_PROCID !== undefined) {
    const node = int(env, 'SLURM_NODEID');
    const spec = env.SLURM_STEP_TASKS_PER_NODE ?? env.SLURM_TASKS_PER_NODE;
    p = {
      launcher: 'Slurm',
      rank: int(env, 'SLURM_PROCID'),
      size: int(env, 'SLURM_NTASKS'),
      localRank: int(env, 'SLURM_LOCALID'),
      localSize: node !== undefined && spec ? slurmTasksOn(spec, node) : undefined,
      job: job(env.SLURM_JOB_ID !== undefined ? `${env.SLURM_JOB_ID}.${env.SLURM_STEP_ID ?? '0'}` : undefined),
    };
  } else if (env.PMI_RANK !== undefined)
    p = {
      launcher: 'MPICH Hydra',
      rank: int(env, 'PMI_RANK'),
      size: int(env, 'PMI_SIZE'),
      localRank: int(env, 'MPI_LOCALRANKID'),
      localSize: int(env, 'MPI_LOCALNRANKS'),
      job: job(env.PMI_KVSNAME) ?? hydraJob(),
    };
  else if (env.PMIX_RANK !== undefined)
    p = {
      launcher: 'PMIx',
      rank: int(env, 'PMIX_RANK'),
      size: int(env, 'PMIX_SIZE') ?? 0,
      localRank: int(env, 'PINCOH_LOCAL_RANK'),
      localSize: int(env, 'PINCOH_LOCAL_SIZE'),
      job: job(env.PMIX_NAMESPACE),
    };
  const missing = p && (['rank', 'size', 'localRank', 'localSize', 'job'] as const).filter((k) => p![k] === undefined);
  if (!p || missing!.length)
    throw new PincohError(
      'PINCOH_ERR_LAUNCHER',
      (p ? `the environment looks like ${p.launcher}'s but lacks what gives ${missing!.join(', ')}` : 'no launcher this knows set the environment') +
        `. pincoh exec runs under a launcher (mpirun, srun, mpiexec); it looked for\n  ${LOOKED_FOR.join('\n  ')}\nOn one machine, use pincoh run.`,
    );
  if (p.localRank! >= p.localSize! || (p.size! > 0 && p.rank! >= p.size!) || p.localSize! < 1)
    throw new PincohError('PINCOH_ERR_LAUNCHER', `${p.launcher} says local rank ${p.localRank} of ${p.localSize}, rank ${p.rank} of ${p.size}: not a placement`);
  return p as Placement;
}

/** The job's name as PINCOH_JOB carries it (31 bytes at most): short ones as they are, long ones hashed. */
export function jobName(job: string): string {
  const safe = job.replace(/[^A-Za-z0-9._-]/g, '_');
  return safe.length <= 31 ? safe : 'j' + createHash('sha256').update(job).digest('hex').slice(0, 30);
}
