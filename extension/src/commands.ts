// The extension's commands. Server-side commands (stacklens.accept, stacklens.searchSelection,
// stacklens.status …) are registered in VS Code by the language client itself, so ours use other ids.
import * as vscode from 'vscode';
import { MatchDiagnostic, matchDiagnostics } from './decorations';
import { compareWithSource } from './evidence';
import { attributionLines, describe, foundIn, lines, licence, Match, sourceName } from './matches';
import { TokenStore } from './secrets';
import { ServerManager } from './server';

const OPEN_LINK: vscode.QuickInputButton = { iconPath: new vscode.ThemeIcon('link-external'), tooltip: 'Open source' };

interface MatchItem extends vscode.QuickPickItem {
  match: Match;
  diag?: MatchDiagnostic;
}

function matchItem(m: Match, diag?: MatchDiagnostic): MatchItem {
  return {
    label: `$(${diag?.blocked ? 'error' : 'warning'}) ${sourceName(m)}`,
    description: `${lines(m)} · ${licence(m)} · score ${m.score.toFixed(2)} · ${foundIn(m)}`,
    detail: diag ? `this file, line ${diag.diagnostic.range.start.line + 1}` + (m.source.url ? ` — ${m.source.url}` : '')
      : m.source.url ?? undefined,
    buttons: m.source.url ? [OPEN_LINK] : [],
    match: m,
    diag,
  };
}

async function openSource(m: Match): Promise<void> {
  if (m.source.url) await vscode.env.openExternal(vscode.Uri.parse(m.source.url));
  else void vscode.window.showInformationMessage(`stacklens: ${describe(m)} has no link.`);
}

/** A quick pick of matches; `onPick` runs for the chosen item, the link button opens the source. */
function pickMatch(title: string, items: MatchItem[], onPick: (i: MatchItem) => void | Promise<void>): void {
  const qp = vscode.window.createQuickPick<MatchItem>();
  qp.title = title;
  qp.items = items;
  qp.matchOnDescription = true;
  qp.matchOnDetail = true;
  qp.onDidTriggerItemButton((e) => void openSource(e.item.match));
  qp.onDidAccept(() => {
    const item = qp.selectedItems[0];
    qp.hide();
    if (item) void onPick(item);
  });
  qp.onDidHide(() => qp.dispose());
  qp.show();
}

export function toggleCompletions(): Thenable<void> {
  const c = vscode.workspace.getConfiguration('stacklens');
  const next = !c.get<boolean>('enableCompletions', true);
  void vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
  void vscode.window.setStatusBarMessage(`stacklens: inline completions ${next ? 'on' : 'off'}`, 3000);
  return c.update('enableCompletions', next, vscode.ConfigurationTarget.Global);
}

async function searchSelection(server: ServerManager): Promise<void> {
  const ed = vscode.window.activeTextEditor;
  if (!ed || ed.selection.isEmpty) {
    void vscode.window.showInformationMessage('stacklens: select some code to search the corpus for.');
    return;
  }
  const s = ed.selection;
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: 'stacklens: searching the corpus' },
    () => server.execute<{ matches?: Match[]; error?: string }>('stacklens.searchSelection', {
      quiet: true, // the results go in our quick pick; a server message would pop up over it
      uri: ed.document.uri.toString(),
      range: { start: { line: s.start.line, character: s.start.character }, end: { line: s.end.line, character: s.end.character } },
    }),
  );
  if (!result) {
    void vscode.window.showWarningMessage('stacklens: the language server is not running.');
    return;
  }
  const found = result.matches ?? [];
  if (!found.length) {
    void vscode.window.showInformationMessage(`stacklens: ${result.error ?? 'not found in the corpus'}.`);
    return;
  }
  pickMatch(`stacklens: ${found.length} match(es) in the corpus — Enter opens the source`, found.map((m) => matchItem(m)), (i) => openSource(i.match));
}

function showMatches(): void {
  const ed = vscode.window.activeTextEditor;
  const all = ed ? matchDiagnostics(ed.document.uri) : [];
  if (!ed || !all.length) {
    void vscode.window.showInformationMessage('stacklens: no corpus matches in this file.');
    return;
  }
  const items = all.flatMap((d) => (d.matches.length ? d.matches : []).slice(0, 1).map((m) => matchItem(m, d)));
  pickMatch(`stacklens: ${all.length} match(es) in this file — Enter reveals, the link button opens the source`, items, (i) => {
    if (!i.diag) return;
    const r = i.diag.diagnostic.range;
    ed.selection = new vscode.Selection(r.start, r.end);
    ed.revealRange(r, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  });
}

async function insertAttribution(): Promise<void> {
  const ed = vscode.window.activeTextEditor;
  const all = ed ? matchDiagnostics(ed.document.uri) : [];
  if (!ed || !all.length) {
    void vscode.window.showInformationMessage('stacklens: no corpus matches in this file to attribute.');
    return;
  }
  // The match under the cursor; else the only one; else let the user choose.
  let target = all.find((d) => d.diagnostic.range.contains(ed.selection.active) || d.diagnostic.range.intersection(ed.selection));
  if (!target && all.length === 1) target = all[0];
  if (!target) {
    target = await new Promise<MatchDiagnostic | undefined>((resolve) => {
      const items = all.filter((d) => d.matches.length).map((d) => matchItem(d.matches[0], d));
      void vscode.window.showQuickPick(items, { title: 'stacklens: attribute which match?' }).then((i) => resolve(i?.diag));
    });
  }
  if (!target || !target.matches.length) return;
  const line = ed.document.lineAt(target.diagnostic.range.start.line);
  const indent = line.text.slice(0, line.firstNonWhitespaceCharacterIndex);
  const text = attributionLines(ed.document.languageId, target.matches).map((l) => indent + l + '\n').join('');
  await ed.edit((b) => b.insert(line.range.start, text));
}

/** The match under the cursor (else the only one) against its source, in the diff editor. */
async function compareAtCursor(server: ServerManager): Promise<void> {
  const ed = vscode.window.activeTextEditor;
  const all = ed ? matchDiagnostics(ed.document.uri) : [];
  const target = all.find((d) => ed && d.diagnostic.range.contains(ed.selection.active)) ?? (all.length === 1 ? all[0] : undefined);
  if (!ed || !target) {
    void vscode.window.showInformationMessage('stacklens: put the cursor on a corpus match to compare it with its source.');
    return;
  }
  const id = (target.diagnostic as { data?: { id?: unknown } }).data?.id;
  await compareWithSource((arg) => server.execute('stacklens.evidence', arg), { uri: ed.document.uri.toString(), id });
}

async function menu(server: ServerManager, completionsEnabled: () => boolean): Promise<void> {
  const items: Array<vscode.QuickPickItem & { command: string }> = [
    { label: `$(${completionsEnabled() ? 'circle-slash' : 'sparkle'}) ${completionsEnabled() ? 'Disable' : 'Enable'} inline completions`, command: 'stacklens.toggleCompletions' },
    { label: '$(list-unordered) Show matches in this file', command: 'stacklens.showMatches' },
    { label: '$(search) Search selection in the corpus', command: 'stacklens.searchSelectionInCorpus' },
    { label: '$(comment) Insert attribution comment', command: 'stacklens.insertAttribution' },
    { label: '$(diff) Compare with the corpus source', command: 'stacklens.compareWithSource' },
    { label: '$(key) Set API token…', command: 'stacklens.setApiToken' },
    { label: '$(gear) Settings', command: 'stacklens.openSettings' },
    { label: '$(output) Show server log', command: 'stacklens.showOutput' },
    { label: '$(debug-restart) Restart server', command: 'stacklens.restartServer' },
  ];
  const pick = await vscode.window.showQuickPick(items, { title: `stacklens (server ${server.state})` });
  if (pick) await vscode.commands.executeCommand(pick.command);
}

export function registerCommands(
  context: vscode.ExtensionContext,
  server: ServerManager,
  tokens: TokenStore,
  output: vscode.LogOutputChannel,
  completionsEnabled: () => boolean,
): void {
  const reg = (id: string, fn: (...a: unknown[]) => unknown) => context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  reg('stacklens.toggleCompletions', toggleCompletions);
  reg('stacklens.searchSelectionInCorpus', () => searchSelection(server));
  reg('stacklens.showMatches', showMatches);
  reg('stacklens.insertAttribution', insertAttribution);
  reg('stacklens.compareWithSource', () => compareAtCursor(server));
  reg('stacklens.setApiToken', () => tokens.prompt());
  reg('stacklens.restartServer', () => server.restart());
  reg('stacklens.showOutput', () => output.show(true));
  reg('stacklens.openSettings', () => vscode.commands.executeCommand('workbench.action.openSettings', '@ext:stacklens.stacklens'));
  reg('stacklens.menu', () => menu(server, completionsEnabled));
}
