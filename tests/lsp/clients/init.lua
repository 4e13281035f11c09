-- Neovim 0.7 (Debian) as a stacklens client: headless, driven by tests/lsp/test_clients.py.
-- Env: PYBIN, STACKLENS_TEST_OPTIONS (JSON initializationOptions), TEST_LINE (0-based cursor line).
-- Prints one "RESULT <json>" line per check; the test parses them.
local function result(kind, value)
  io.stdout:write("RESULT " .. vim.json.encode({ kind = kind, value = value }) .. "\n")
end

local function run(bufnr)
  local options = vim.json.decode(os.getenv("STACKLENS_TEST_OPTIONS"))
  local client_id = vim.lsp.start_client({
    name = "stacklens",
    cmd = { os.getenv("PYBIN"), "-m", "lsp_server.cli", "lsp" },
    root_dir = vim.fn.getcwd(),
    init_options = options,
  })
  vim.lsp.buf_attach_client(bufnr, client_id)
  local client = vim.lsp.get_client_by_id(client_id)
  local function stacklens_diagnostics()
    local out = {}
    for _, d in ipairs(vim.diagnostic.get(bufnr)) do
      if d.source == "stacklens" then table.insert(out, d) end
    end
    return out
  end
  vim.wait(60000, function() return #stacklens_diagnostics() > 0 end, 50)
  local diags = {}
  for _, d in ipairs(stacklens_diagnostics()) do
    table.insert(diags, { line = d.lnum, message = d.message })
  end
  result("diagnostics", diags)

  local line = tonumber(os.getenv("TEST_LINE"))
  local position = { line = line, character = 0 }
  local uri = vim.uri_from_bufnr(bufnr)
  -- Standard LSP 3.18 inline completion (0.7 has no UI for it; the request is still plain LSP).
  local resp = client.request_sync("textDocument/inlineCompletion", {
    textDocument = { uri = uri }, position = position, context = { triggerKind = 1 },
  }, 60000, bufnr)
  local items = {}
  if resp and resp.result then
    for _, item in ipairs(resp.result.items or resp.result) do table.insert(items, item.insertText) end
  end
  result("inline", { items = items, err = resp and resp.err and resp.err.message or vim.NIL })
  -- What llm.nvim sends.
  resp = client.request_sync("llm-ls/getCompletions", {
    textDocument = { uri = uri }, position = position, model = "ignored", backend = "huggingface",
    url = vim.NIL, tokensToClear = { "<|endoftext|>" }, fim = { enabled = true,
    prefix = "<fim_prefix>", middle = "<fim_middle>", suffix = "<fim_suffix>" },
    requestBody = { parameters = { max_new_tokens = 60 } }, contextWindow = 1024, ide = "neovim",
    tlsSkipVerifyInsecure = false, tokenizerConfig = vim.NIL,
  }, 60000, bufnr)
  local texts = {}
  if resp and resp.result then
    for _, c in ipairs(resp.result.completions) do table.insert(texts, c.generated_text) end
  end
  result("llm-ls", { completions = texts, request_id = resp and resp.result and resp.result.request_id })

  vim.lsp.stop_client(client_id)
  local stopped = vim.wait(10000, function() return vim.lsp.get_client_by_id(client_id) == nil end, 50)
  result("stopped", stopped)
  vim.cmd("qa!")
end

vim.api.nvim_create_autocmd("FileType", { pattern = "python", callback = function(args)
  vim.schedule(function() run(args.buf) end)
end })
