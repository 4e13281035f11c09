// Finds the Python interpreter that runs the server. Order: the `stacklens.pythonPath` setting
// (used alone when set: silently falling back would hide a typo), an active virtual environment,
// each workspace folder's .venv/venv, then python3/python on PATH. Pure except for the injected
// `exists`/`probe` functions, so the search order is unit tested.
import * as path from 'path';
import { PYTHON_FLAGS, resolvePath } from './launch';

export interface Candidate {
  path: string;
  origin: string; // why we tried it, shown to the user when nothing works
}

export interface SearchInput {
  configured: string;
  workspaceFolders: string[];
  env: Record<string, string | undefined>;
  platform: NodeJS.Platform;
  exists: (p: string) => boolean;
}

function venvPython(dir: string, platform: NodeJS.Platform): string {
  return platform === 'win32' ? path.join(dir, 'Scripts', 'python.exe') : path.join(dir, 'bin', 'python');
}

/** Substitutes ${workspaceFolder} and a leading ~ in a configured path; a relative path with a
 * directory part is taken from the workspace folder (the server does not run there), a bare name
 * such as `python3` is looked up on PATH. */
export function expandPath(p: string, workspaceFolders: string[], home: string | undefined): string {
  const bare = !/[\\/~]/.test(p) && !p.includes('${workspaceFolder}');
  return bare ? p.trim() : resolvePath(p, workspaceFolders[0], home);
}

export function candidates(input: SearchInput): Candidate[] {
  const { configured, workspaceFolders, env, platform, exists } = input;
  if (configured.trim()) {
    return [{ path: expandPath(configured, workspaceFolders, env.HOME), origin: 'setting stacklens.pythonPath' }];
  }
  const out: Candidate[] = [];
  const add = (p: string, origin: string) => {
    if (!out.some((c) => c.path === p)) out.push({ path: p, origin });
  };
  if (env.VIRTUAL_ENV && exists(venvPython(env.VIRTUAL_ENV, platform))) {
    add(venvPython(env.VIRTUAL_ENV, platform), 'VIRTUAL_ENV');
  }
  for (const folder of workspaceFolders) {
    for (const name of ['.venv', 'venv']) {
      const p = venvPython(path.join(folder, name), platform);
      if (exists(p)) add(p, `workspace ${name}`);
    }
  }
  const dirs = (env.PATH ?? '').split(path.delimiter).filter(Boolean);
  const names = platform === 'win32' ? ['python.exe', 'py.exe'] : ['python3', 'python'];
  for (const name of names) {
    const dir = dirs.find((d) => exists(path.join(d, name)));
    if (dir) add(path.join(dir, name), 'PATH');
  }
  return out;
}

/** The check run with each candidate, in the server's working directory and isolated mode: the
 * server package must import the way the server will import it. */
export const PROBE_ARGS = [...PYTHON_FLAGS, '-c', 'import sys, lsp_server.main; print(sys.executable)'];

export interface ProbeResult {
  ok: boolean;
  detail: string; // the interpreter's path when ok, else why not (first line of the error)
}

export interface Found {
  python: string;
  origin: string;
}

export class NotInstalledError extends Error {
  constructor(public readonly tried: Array<Candidate & { detail: string }>) {
    super(notInstalledMessage(tried));
  }
}

export function notInstalledMessage(tried: Array<Candidate & { detail: string }>): string {
  const where = tried.length
    ? tried.map((t) => `${t.path} (${t.origin}): ${t.detail}`).join('; ')
    : 'no Python interpreter found (workspace .venv, PATH)';
  return 'stacklens is not installed in any Python interpreter found. Install it (`make install` or ' +
    '`pip install -e ".[model]"` in a stacklens checkout) and set `stacklens.pythonPath` to that interpreter. Tried: ' + where;
}

/** The first candidate whose probe succeeds; throws NotInstalledError listing every failure. */
export async function findInterpreter(
  list: Candidate[],
  probe: (python: string) => Promise<ProbeResult>,
): Promise<Found> {
  const tried: Array<Candidate & { detail: string }> = [];
  for (const c of list) {
    const r = await probe(c.path);
    if (r.ok) return { python: c.path, origin: c.origin };
    tried.push({ ...c, detail: r.detail });
  }
  throw new NotInstalledError(tried);
}

/** Turns a failed probe's stderr into one readable line. */
export function probeFailure(stderr: string, error?: string): string {
  if (error) return error.includes('ENOENT') ? 'not found' : error;
  const lines = stderr.trim().split('\n').filter(Boolean);
  const last = lines[lines.length - 1] ?? 'failed';
  return /ModuleNotFoundError: No module named 'lsp_server'/.test(stderr) ? 'stacklens is not installed here' : last;
}
