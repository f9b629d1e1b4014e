// A modal on the native <dialog>: showModal() traps focus and gives Esc
// (the "cancel" event) for free; focus goes back where it was on close.
import type { ComponentChildren } from 'preact';
import { useEffect, useId, useRef } from 'preact/hooks';

interface Props {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  testid?: string;
  wide?: boolean;
}

export function Dialog({ title, onClose, children, testid, wide }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId(); // a confirm can open over the details dialog
  const closeRef = useRef(onClose);
  closeRef.current = onClose;

  useEffect(() => {
    const d = ref.current!;
    const before = document.activeElement as HTMLElement | null;
    d.showModal();
    const cancel = (e: Event) => {
      e.preventDefault();
      closeRef.current();
    };
    // a click on the backdrop lands on the dialog element itself
    const click = (e: MouseEvent) => {
      if (e.target === d) closeRef.current();
    };
    d.addEventListener('cancel', cancel);
    d.addEventListener('click', click);
    return () => {
      d.removeEventListener('cancel', cancel);
      d.removeEventListener('click', click);
      if (d.open) d.close();
      before?.focus?.();
    };
  }, []);

  return (
    <dialog ref={ref} class={wide ? 'dialog wide' : 'dialog'} aria-labelledby={titleId} data-testid={testid}>
      <div class="dialog-head">
        <h2 id={titleId}>{title}</h2>
        <button type="button" class="icon-btn" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </div>
      <div class="dialog-body">{children}</div>
    </dialog>
  );
}
