// Starts and supervises the Python language server (`python -I -m lsp_server.cli lsp`, see
// launch.ts) through vscode-languageclient: finds the interpreter, explains when stacklens is missing,
// restarts after a crash with a bounded back-off, says why it crashed, and routes the server's stderr
// to the "stacklens" output channel.
import * as cp from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as readline from 'readline';
import * as vscode from 'vscode';
import {
  CloseAction, DidChangeConfigurationNotification, ErrorAction, ExecuteCommandRequest, LanguageClient,
  LanguageClientOptions, RevealOutputChannelOn, ServerOptions, State, TransportKind,
} from 'vscode-languageclient/node';
import { RestartPolicy } from './backoff';
import { crashReason, StderrTail } from './crash';
import { compareWithSource } from './evidence';
import { candidates, findInterpreter, Found, NotInstalledError, PROBE_ARGS, ProbeResult, probeFailure } from './interpreter';
import { TokenStore } from './secrets';
import { serverLaunch } from './launch';
import { classify, Level } from './serverLog';
import { toServerConfig } from './settings';

export type ServerState = 'stopped' | 'starting' | 'running' | 'failed';

const PROBE_TIMEOUT_MS = 30_000; // importing pygls + pydantic on a busy machine can take a while

function probe(python: string, cwd: string): Promise<ProbeResult> {
  return new Promise((resolve) => {
    cp.execFile(python, PROBE_ARGS, { timeout: PROBE_TIMEOUT_MS, cwd }, (err, stdout, stderr) => {
      if (!err) resolve({ ok: true, detail: stdout.trim() });
      else resolve({ ok: false, detail: probeFailure(stderr, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'ENOENT' : stderr ? undefined : err.message) });
    });
  });
}

function lines(input: NodeJS.ReadableStream, onLine: (l: string) => void): void {
  readline.createInterface({ input, crlfDelay: Infinity, terminal: false }).on('line', onLine);
}

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('stacklens');
}

/** The server's view of the settings, with secrets filled in and relative paths made absolute
 * against the (scope's) workspace folder. */
export function serverConfig(tokens: TokenStore, scope?: vscode.Uri): Record<string, unknown> {
  const c = vscode.workspace.getConfiguration('stacklens', scope);
  const folder = (scope && vscode.workspace.getWorkspaceFolder(scope)) ?? vscode.workspace.workspaceFolders?.[0];
  const workspaceFolder = folder?.uri.scheme === 'file' ? folder.uri.fsPath : undefined;
  return toServerConfig((k) => c.get(k), tokens.tokens, { workspaceFolder, home: os.homedir(), exists: (p) => fs.existsSync(p) });
}

/** A working directory that is not the workspace: the extension's storage, else the temp dir.
 * (The language client falls back to the workspace folder when `cwd` does not exist.) */
function neutralDir(storage: string): string {
  try {
    fs.mkdirSync(storage, { recursive: true });
    return storage;
  } catch {
    return os.tmpdir();
  }
}

// The client pops a notification of its own for every failed (re)start ("couldn't create connection
// to server"), which never names the cause; onClosed/doStart show one message that does.
class QuietClient extends LanguageClient {
  override error(message: string, data?: unknown, showNotification?: boolean | 'force'): void {
    super.error(message, data, showNotification === 'force' ? false : showNotification);
  }
}

export class ServerManager implements vscode.Disposable {
  client: LanguageClient | undefined;
  state: ServerState = 'stopped';
  interpreter: Found | undefined;
  private readonly policy = new RestartPolicy();
  private readonly stateChanged = new vscode.EventEmitter<ServerState>();
  readonly onDidChangeState = this.stateChanged.event;
  private stopping = false;
  private starting: Promise<void> | undefined;
  private stderr = new StderrTail(); // of the current server process

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly tokens: TokenStore,
    private readonly completionsEnabled: () => boolean,
    private readonly storageDir: string,
  ) {}

  private setState(s: ServerState): void {
    this.state = s;
    this.stateChanged.fire(s);
  }

  /** Starts the server unless it is running or starting; errors are shown, not thrown. */
  start(): Promise<void> {
    this.starting ??= this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.setState('starting');
    this.stopping = false;
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
    const list = candidates({
      configured: config().get<string>('pythonPath') ?? '',
      workspaceFolders: folders,
      env: process.env,
      platform: process.platform,
      exists: (p) => fs.existsSync(p),
    });
    const cwd = neutralDir(this.storageDir);
    try {
      this.interpreter = await findInterpreter(list, (python) => probe(python, cwd));
    } catch (e) {
      this.setState('failed');
      const msg = e instanceof NotInstalledError ? e.message : `stacklens: cannot find Python: ${String(e)}`;
      this.output.appendLine(msg);
      void vscode.window.showErrorMessage(msg, 'Set Python Path', 'Show Log').then((a) => {
        if (a === 'Set Python Path') void vscode.commands.executeCommand('workbench.action.openSettings', 'stacklens.pythonPath');
        if (a === 'Show Log') this.output.show(true);
      });
      return;
    }
    this.output.appendLine(`stacklens: starting the server with ${this.interpreter.python} (${this.interpreter.origin})`);
    await this.tokens.load();
    const launch = serverLaunch({
      python: this.interpreter.python,
      logLevel: config().get<string>('logLevel') || 'info',
      extraArgs: config().get<string[]>('server.extraArgs') ?? [],
      workspaceFolder: folders[0],
      serverDir: cwd,
      env: process.env,
    });
    const serverOptions: ServerOptions = {
      command: launch.command,
      args: launch.args,
      transport: TransportKind.stdio,
      options: { cwd: launch.cwd, env: launch.env },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      stdioOptions: {
        stdout: (input, channel) => lines(input, (l) => channel.info(l)),
        stderr: (input, channel) => {
          // Called once per server process: a restarted server starts a fresh tail.
          const tail = (this.stderr = new StderrTail());
          input.on('close', () => tail.close());
          input.on('end', () => tail.close());
          let level: Level = 'info';
          lines(input, (l) => {
            tail.push(l);
            const c = classify(l, level);
            level = c.level;
            channel[c.level](c.text);
          });
        },
      },
      initializationOptions: serverConfig(this.tokens),
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => this.onClosed(),
      },
      middleware: {
        // The server pulls section "stacklens": answer with its own shape, not VS Code's raw section
        // (editor-only keys would make the server reject the whole layer), secrets included.
        workspace: {
          configuration: (params, _token, _next) =>
            params.items.map((item) =>
              item.section === 'stacklens' || item.section === undefined
                ? serverConfig(this.tokens, item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined)
                : null),
        },
        // The server's "compare with the source" writes a unified diff for editors without a diff
        // view; VS Code has one: the same evidence opens in it (evidence.ts).
        executeCommand: (command, args, next) =>
          command === 'stacklens.showDiff'
            ? compareWithSource((arg) => next('stacklens.evidence', [arg]), args[0])
            : next(command, args),
        // "Toggle completions" only silences ghost text; highlights and hovers keep working.
        provideInlineCompletionItems: (document, position, context, token, next) =>
          this.completionsEnabled() ? next(document, position, context, token) : null,
      },
    };
    const client = new QuietClient('stacklens', 'stacklens', serverOptions, clientOptions);
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) this.setState('running');
      else if (e.newState === State.Stopped && this.state === 'running') this.setState(this.stopping ? 'stopped' : 'starting');
    });
    this.client = client;
    try {
      await client.start();
    } catch (e) {
      // A server that dies during initialize: onClosed already decided whether to retry.
      this.output.appendLine(`stacklens: the server failed to start: ${String(e)}`);
      if (this.client === client && client.state !== State.Running && this.state !== 'starting' && this.state !== 'failed') {
        this.setState('failed');
        this.showFailure(`stacklens: the language server failed to start: ${(await this.reason()) ?? String(e)}`);
      }
    }
  }

  /** Why the current server process died, from its last stderr lines (waits briefly for them). */
  private async reason(): Promise<string | undefined> {
    const tail = this.stderr;
    await Promise.race([tail.ended, new Promise((r) => setTimeout(r, 1000))]);
    return crashReason(tail.lines);
  }

  private showFailure(msg: string): void {
    this.output.appendLine(msg);
    void vscode.window.showErrorMessage(msg, 'Restart', 'Show Log').then((a) => {
      if (a === 'Restart') void this.restart();
      if (a === 'Show Log') this.output.show(true);
    });
  }

  /** Crash handling: restart after a growing delay, give up after too many crashes in a row. */
  private async onClosed(): Promise<{ action: CloseAction; handled: boolean }> {
    if (this.stopping) return { action: CloseAction.DoNotRestart, handled: true };
    const delay = this.policy.onCrash();
    const why = await this.reason();
    if (delay === undefined) {
      this.setState('failed');
      const minutes = Math.round(this.policy.windowMs / 60_000);
      this.showFailure(`stacklens: the language server crashed ${this.policy.recentCrashes} times within ${minutes} minutes; ` +
        `not restarting it. ${why ? `Last error: ${why}` : 'It wrote no error; see the log.'}`);
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    this.setState('starting');
    this.output.appendLine(`stacklens: the server exited unexpectedly${why ? ` (${why})` : ''}; restarting in ${delay / 1000} s`);
    await new Promise((r) => setTimeout(r, delay));
    return { action: this.stopping ? CloseAction.DoNotRestart : CloseAction.Restart, handled: true };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const client = this.client;
    this.client = undefined;
    if (client) {
      try {
        await client.stop(5000); // bounded: a wedged server must not block VS Code
      } catch (e) {
        this.output.appendLine(`stacklens: stopping the server: ${String(e)}`);
      }
    }
    this.setState('stopped');
  }

  /** A deliberate restart (command, settings change): forgets earlier crashes. */
  async restart(): Promise<void> {
    await this.starting?.catch(() => undefined);
    await this.stop();
    this.policy.reset();
    await this.start();
  }

  /** Push changed settings (or secrets); the server also re-pulls them. */
  pushConfiguration(): void {
    if (this.client?.state !== State.Running) return;
    void this.client.sendNotification(DidChangeConfigurationNotification.type, {
      settings: { stacklens: serverConfig(this.tokens) },
    });
  }

  /** Runs a server command (workspace/executeCommand); undefined when the server is not running. */
  async execute<T>(command: string, arg: unknown): Promise<T | undefined> {
    if (this.client?.state !== State.Running) return undefined;
    return (await this.client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] })) as T;
  }

  dispose(): void {
    void this.stop();
    this.stateChanged.dispose();
  }
}
