// Entry point: wires the server launcher, match decorations, status bar and commands together.
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { MatchDecorations } from './decorations';
import { registerEvidence } from './evidence';
import { TokenStore } from './secrets';
import { ServerManager } from './server';
import { needsRestart } from './settings';
import { StatusBar } from './statusBar';

let server: ServerManager | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('stacklens', { log: true });
  const tokens = new TokenStore(context.secrets);
  const completionsEnabled = () => vscode.workspace.getConfiguration('stacklens').get<boolean>('enableCompletions', true);
  server = new ServerManager(output, tokens, completionsEnabled, context.globalStorageUri.fsPath);
  const status = new StatusBar(server, completionsEnabled);
  const decorations = new MatchDecorations(context, () => status.render());
  context.subscriptions.push(output, tokens, server, status, decorations);
  registerCommands(context, server, tokens, output, completionsEnabled);
  registerEvidence(context);

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('stacklens')) return;
      if (needsRestart((s) => e.affectsConfiguration(s))) {
        output.appendLine('stacklens: settings changed; restarting the server');
        void server?.restart();
      } else {
        server?.pushConfiguration();
        void status.refreshStatus();
        status.render();
      }
    }),
    tokens.onDidChange(() => server?.pushConfiguration()),
  );
  // Not awaited: activation must not wait for Python to import torch.
  void server.start();
}

export async function deactivate(): Promise<void> {
  await server?.stop();
}
