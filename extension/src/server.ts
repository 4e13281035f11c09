// Starts and supervises the Python language server (`python -m lsp_server.cli lsp`) through
// vscode-languageclient: finds the interpreter, explains when stacklens is missing, restarts after
// a crash with a bounded back-off, and routes the server's stderr to the "stacklens" output channel.
import * as cp from 'child_process';
import * as fs from 'fs';
import * as readline from 'readline';
import * as vscode from 'vscode';
import {
  CloseAction, DidChangeConfigurationNotification, ErrorAction, ExecuteCommandRequest, LanguageClient,
  LanguageClientOptions, RevealOutputChannelOn, ServerOptions, State, TransportKind,
} from 'vscode-languageclient/node';
import { RestartPolicy } from './backoff';
import { candidates, findInterpreter, Found, NotInstalledError, PROBE_ARGS, ProbeResult, probeFailure } from './interpreter';
import { TokenStore } from './secrets';
import { classify, Level } from './serverLog';
import { toServerConfig } from './settings';

export type ServerState = 'stopped' | 'starting' | 'running' | 'failed';

const PROBE_TIMEOUT_MS = 30_000; // importing pygls + pydantic on a busy machine can take a while

function probe(python: string): Promise<ProbeResult> {
  return new Promise((resolve) => {
    cp.execFile(python, PROBE_ARGS, { timeout: PROBE_TIMEOUT_MS }, (err, stdout, stderr) => {
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

/** The server's view of the settings, with secrets filled in. */
export function serverConfig(tokens: TokenStore, scope?: vscode.Uri): Record<string, unknown> {
  const c = vscode.workspace.getConfiguration('stacklens', scope);
  return toServerConfig((k) => c.get(k), tokens.tokens);
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

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly tokens: TokenStore,
    private readonly completionsEnabled: () => boolean,
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
    try {
      this.interpreter = await findInterpreter(list, probe);
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
    const args = ['-m', 'lsp_server.cli', 'lsp', '--log-level', config().get<string>('logLevel') || 'info',
      ...(config().get<string[]>('server.extraArgs') ?? [])];
    const serverOptions: ServerOptions = {
      command: this.interpreter.python,
      args,
      transport: TransportKind.stdio,
      options: { cwd: folders[0], env: { ...process.env, PYTHONUNBUFFERED: '1' } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
      outputChannel: this.output,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      stdioOptions: {
        stdout: (input, channel) => lines(input, (l) => channel.info(l)),
        stderr: (input, channel) => {
          let level: Level = 'info';
          lines(input, (l) => {
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
        // "Toggle completions" only silences ghost text; highlights and hovers keep working.
        provideInlineCompletionItems: (document, position, context, token, next) =>
          this.completionsEnabled() ? next(document, position, context, token) : null,
      },
    };
    const client = new LanguageClient('stacklens', 'stacklens', serverOptions, clientOptions);
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
      if (this.client === client && client.state !== State.Running && this.state !== 'starting') this.setState('failed');
    }
  }

  /** Crash handling: restart after a growing delay, give up after too many crashes in a row. */
  private async onClosed(): Promise<{ action: CloseAction; handled: boolean }> {
    if (this.stopping) return { action: CloseAction.DoNotRestart, handled: true };
    const delay = this.policy.onCrash();
    if (delay === undefined) {
      this.setState('failed');
      const msg = `stacklens: the language server stopped ${this.policy.recentCrashes} times in a few minutes; not restarting it.`;
      this.output.appendLine(msg);
      void vscode.window.showErrorMessage(msg, 'Restart', 'Show Log').then((a) => {
        if (a === 'Restart') void this.restart();
        if (a === 'Show Log') this.output.show(true);
      });
      return { action: CloseAction.DoNotRestart, handled: true };
    }
    this.setState('starting');
    this.output.appendLine(`stacklens: the server exited unexpectedly; restarting in ${delay / 1000} s`);
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
