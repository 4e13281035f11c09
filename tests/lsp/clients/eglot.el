;;; eglot.el --- Emacs + eglot 1.9 (Debian) as a stacklens client, batch mode -*- lexical-binding: t -*-
;; Driven by tests/lsp/test_clients.py.  Env: PYBIN, TEST_FILE, TEST_LINE (1-based cursor line);
;; the server takes its index and model from STACKLENS_* env vars (no initializationOptions).
;; Prints one "RESULT <json>" line per check.
(package-initialize)
(require 'eglot)
(require 'python)
(require 'json)
(setq eglot-sync-connect t eglot-connect-timeout 60)
(add-to-list 'eglot-server-programs
             `(python-mode . (,(getenv "PYBIN") "-m" "lsp_server.cli" "lsp")))

(defvar stacklens-diagnostics nil "Messages of the last stacklens publishDiagnostics.")
(advice-add 'eglot-handle-notification :before
            (lambda (_server method &rest params)
              (when (eq method 'textDocument/publishDiagnostics)
                (let ((diags (plist-get params :diagnostics)))
                  (when (> (length diags) 0)
                    (setq stacklens-diagnostics
                          (mapcar (lambda (d) (plist-get d :message)) diags)))))))

(defun result (kind value)
  (princ (format "RESULT %s\n" (json-encode (list :kind kind :value value)))))

(find-file (getenv "TEST_FILE"))
(python-mode)
(apply #'eglot (eglot--guess-contact))
(let ((deadline (+ (float-time) 60)))
  (while (and (< (float-time) deadline) (not (eglot-current-server)))
    (accept-process-output nil 0.1)))
(let ((deadline (+ (float-time) 60)))
  (while (and (< (float-time) deadline) (null stacklens-diagnostics))
    (accept-process-output nil 0.1)))
(result "diagnostics" (vconcat stacklens-diagnostics))

(goto-char (point-min))
(forward-line (1- (string-to-number (getenv "TEST_LINE"))))
(let* ((server (eglot-current-server))
       (inline (jsonrpc-request server :textDocument/inlineCompletion
                                (append (eglot--TextDocumentPositionParams)
                                        (list :context (list :triggerKind 1)))
                                :timeout 60))
       (items (if (vectorp inline) inline (plist-get inline :items))))
  (result "inline" (list :items (vconcat (mapcar (lambda (i) (plist-get i :insertText)) items)))))
(let* ((server (eglot-current-server))
       (reply (jsonrpc-request server :llm-ls/getCompletions
                               (append (eglot--TextDocumentPositionParams)
                                       (list :model "ignored" :backend "huggingface"
                                             :tokensToClear ["<|endoftext|>"] :ide "emacs"
                                             :fim (list :enabled t :prefix "<fim_prefix>"
                                                        :middle "<fim_middle>" :suffix "<fim_suffix>")
                                             :requestBody (list :parameters (list :max_new_tokens 60))
                                             :contextWindow 1024))
                               :timeout 60)))
  (result "llm-ls" (list :completions
                         (vconcat (mapcar (lambda (c) (plist-get c :generated_text))
                                          (plist-get reply :completions))))))
(let ((proc (jsonrpc--process (eglot-current-server))))
  (eglot-shutdown (eglot-current-server) nil 10)
  (result "stopped" (if (process-live-p proc) :json-false t)))
(kill-emacs 0)
