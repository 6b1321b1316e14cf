// Reads something now and again every `intervalMs` while the page shows it: how the map
// sees a new replica go from Creating to Ready without a reload. A read still running
// when the next is due is not doubled.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { messageOf } from "./api.ts";

export interface Polled<T> {
  data: T | undefined;
  error: string | undefined;
  /** Reads again now (after a change the page made). */
  refresh: () => void;
}

export function usePoll<T>(read: () => Promise<T>, intervalMs: number, key = ""): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const running = useRef(false);
  const reader = useRef(read);
  reader.current = read;
  const tick = useCallback(async () => {
    if (running.current) return;
    running.current = true;
    try {
      setData(await reader.current());
      setError(undefined);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      running.current = false;
    }
  }, []);
  useEffect(() => {
    void tick();
    const timer = setInterval(() => void tick(), intervalMs);
    return () => clearInterval(timer);
  }, [tick, intervalMs, key]);
  return { data, error, refresh: () => void tick() };
}
