// Texts of the status bar item and its tooltip from the server's `stacklens.status` answer. Pure
// (no `vscode` import), so it is unit tested.

/** The configured engine as `stacklens.status` reports it (lsp_server/engines.py). */
export interface EngineStatus {
  engine?: string; // "<backend> <model or url>"
  model?: string | null; // the model the backend named, e.g. from a model server's /healthz
  state?: string;
  error?: string | null;
}

/** A short model name for the status bar: "/models/starcoder2-3b" and "bigcode/starcoder2-3b" ->
 * "starcoder2-3b". Without a model name (a model server that has not answered yet) the backend's
 * name, never the server's URL. */
export function modelLabel(engine: EngineStatus | null | undefined): string {
  if (!engine) return 'no model';
  const model = engine.model?.trim();
  if (model) return model.split(/[\\/]+/).filter(Boolean).pop() ?? model;
  const backend = engine.engine?.trim().split(/\s+/)[0];
  return backend || 'no model';
}

/** The tooltip's corpus line: the server already says what it checks against ("index /srv/idx",
 * "membership service http://…", "no membership index"). */
export function membershipLine(membership: string | undefined, policy: string | undefined): string {
  return `- corpus: ${membership ?? 'unknown'}; policy: ${policy ?? '?'}`;
}
