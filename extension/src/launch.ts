// How the language server process is started. The server must not be able to import anything from
// the workspace: a workspace file named logging.py or attr.py would otherwise shadow the server's own
// dependencies (it crashes at start-up), and any workspace module imported that way runs repository
// code inside the server. So Python runs isolated (-I: neither the working directory nor PYTHONPATH
// is on sys.path, PYTHON* variables and user site-packages are ignored) in a working directory that
// belongs to the extension, and paths in settings are made absolute against the workspace folder
// before they reach the server. Pure (no `vscode` import), so it is unit tested.
import * as path from 'path';

/** Interpreter flags for the server and for the probe that checks stacklens is installed. -u because
 * -I also ignores PYTHONUNBUFFERED, and the server's log must reach the output channel as it happens. */
export const PYTHON_FLAGS = ['-I', '-u'];

/** Server options (`stacklens lsp`) whose value is a path, resolved against the workspace folder. */
const PATH_OPTIONS = ['--index', '--log-file'];

export interface LaunchInput {
  python: string;
  logLevel: string;
  extraArgs: string[];
  workspaceFolder: string | undefined;
  /** A directory owned by the extension (its global storage), used as the working directory. */
  serverDir: string;
  env: Record<string, string | undefined>;
}

export interface Launch {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string | undefined>;
}

/** Makes a relative path absolute against the workspace folder (the server's working directory is
 * not the workspace); `${workspaceFolder}` and a leading `~` are expanded first. */
export function resolvePath(p: string, workspaceFolder: string | undefined, home: string | undefined): string {
  let out = p.trim();
  if (workspaceFolder) out = out.split('${workspaceFolder}').join(workspaceFolder);
  if (home && (out === '~' || out.startsWith('~/'))) out = path.join(home, out.slice(1));
  if (out && workspaceFolder && !path.isAbsolute(out)) out = path.join(workspaceFolder, out);
  return out;
}

/** `extraArgs` with the values of path options (`--index x`, `--log-file=x`) made absolute. */
export function resolveArgs(args: string[], workspaceFolder: string | undefined, home: string | undefined): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.indexOf('=');
    if (eq > 0 && PATH_OPTIONS.includes(a.slice(0, eq))) {
      out.push(`${a.slice(0, eq)}=${resolvePath(a.slice(eq + 1), workspaceFolder, home)}`);
    } else if (PATH_OPTIONS.includes(a) && i + 1 < args.length) {
      out.push(a, resolvePath(args[++i], workspaceFolder, home));
    } else {
      out.push(a);
    }
  }
  return out;
}

/** The command line, working directory and environment of `stacklens lsp` (the language client
 * appends `--stdio`). */
export function serverLaunch(input: LaunchInput): Launch {
  const { python, logLevel, extraArgs, workspaceFolder, serverDir, env } = input;
  return {
    command: python,
    args: [...PYTHON_FLAGS, '-m', 'lsp_server.cli', 'lsp', '--log-level', logLevel || 'info',
      ...resolveArgs(extraArgs, workspaceFolder, env.HOME)],
    cwd: serverDir,
    env: { ...env },
  };
}
