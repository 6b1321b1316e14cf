// A modal confirmation (the native <dialog>, so focus is trapped and Escape cancels): every
// create and delete in the portal goes through one. The confirming button's accessible
// name is the action itself ("Create", "Delete").
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { messageOf } from "./api.ts";

export interface ConfirmDialogProps {
  title: string;
  /** The confirming button's label. */
  action: string;
  danger?: boolean;
  children?: ComponentChildren;
  /** Runs on confirm; a throw is shown in the dialog, which stays open. */
  onConfirm: () => Promise<void>;
  onClose: () => void;
}

export function ConfirmDialog(props: ConfirmDialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await props.onConfirm();
      props.onClose();
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} class="confirm" aria-labelledby="confirm-title" onClose={props.onClose}>
      <h2 id="confirm-title">{props.title}</h2>
      <div class="confirm-body">{props.children}</div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="confirm-actions">
        <button type="button" onClick={props.onClose}>
          Cancel
        </button>
        <button
          type="button"
          class={props.danger ? "danger" : "primary"}
          disabled={busy}
          onClick={() => void confirm()}
        >
          {props.action}
        </button>
      </div>
    </dialog>
  );
}
