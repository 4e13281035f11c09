// The status bar item: is the server up, which model and index it uses, how many corpus matches the
// active file has. Clicking opens the stacklens menu. Server facts come from `stacklens.status`
// (with quiet: true, so polling does not pop a message).
import * as vscode from 'vscode';
import { matchDiagnostics } from './decorations';
import { matchCountLabel } from './matches';
import { ServerManager } from './server';
import { EngineStatus, membershipLine, modelLabel } from './statusText';

interface ServerStatus {
  version?: string;
  membership?: string;
  policy?: string;
  completion?: { configured?: EngineStatus | null };
}

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('stacklens.status', vscode.StatusBarAlignment.Right, 100);
  private status: ServerStatus | undefined;
  private readonly subs: vscode.Disposable[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly server: ServerManager, private readonly completionsEnabled: () => boolean) {
    this.item.name = 'stacklens';
    this.item.command = 'stacklens.menu';
    this.subs.push(
      server.onDidChangeState((s) => {
        if (s === 'running') void this.refreshStatus();
        else this.render();
      }),
      vscode.window.onDidChangeActiveTextEditor(() => this.render()),
      vscode.languages.onDidChangeDiagnostics(() => this.render()),
    );
    // The engine loads asynchronously after initialize; poll (bounded, slowly) until it settles.
    this.timer = setInterval(() => {
      const st = this.status?.completion?.configured?.state;
      if (server.state === 'running' && (!this.status || st === 'starting')) void this.refreshStatus();
    }, 3000);
    this.render();
    this.item.show();
  }

  async refreshStatus(): Promise<void> {
    try {
      this.status = await this.server.execute<ServerStatus>('stacklens.status', { quiet: true });
    } catch {
      this.status = undefined;
    }
    this.render();
  }

  render(): void {
    const editor = vscode.window.activeTextEditor;
    const count = editor ? matchDiagnostics(editor.document.uri).length : 0;
    const engine = this.status?.completion?.configured;
    const model = modelLabel(engine); // the status bar has little room
    const on = this.completionsEnabled();
    switch (this.server.state) {
      case 'running':
        this.item.text = `${on ? '$(sparkle)' : '$(circle-slash)'} stacklens: ${matchCountLabel(count)}` +
          (engine?.state === 'failed' ? ' · $(warning) model failed' : engine ? ` · ${model}` : '');
        break;
      case 'starting':
        this.item.text = '$(loading~spin) stacklens';
        break;
      default:
        this.item.text = '$(error) stacklens';
    }
    const md = new vscode.MarkdownString(undefined, true);
    md.appendMarkdown(`**stacklens** — server ${this.server.state}` +
      (this.server.interpreter ? ` (\`${this.server.interpreter.python}\`)` : '') + '\n\n');
    md.appendMarkdown(`- completions: ${on ? 'on' : 'off'}; model: ${model}` +
      (engine?.state ? ` (${engine.state})` : '') + (engine?.engine ? `, ${engine.engine}` : '') + '\n');
    if (engine?.error) md.appendMarkdown(`- model error: ${engine.error}\n`);
    md.appendMarkdown(membershipLine(this.status?.membership, this.status?.policy) + '\n');
    md.appendMarkdown(`- this file: ${matchCountLabel(count)}\n\nClick for the stacklens menu.`);
    this.item.tooltip = md;
    this.item.backgroundColor = this.server.state === 'failed' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    if (this.timer) clearInterval(this.timer);
    this.subs.forEach((s) => s.dispose());
    this.item.dispose();
  }
}
