// The shape of one replication as the admin API answers it (replication-view.ts builds
// it). A file without imports, so that the portal's pages type their reads with it too.

export interface ReplicationView {
  name: string;
  location: string;
  /** The same as `location` (Meridian's word for it). */
  region: string;
  endpoint: string | null;
  home: boolean;
  regionEndpointEnabled: boolean;
  provisioner: "local" | "join";
  /** Creating, Succeeded, Deleting, or Failed. */
  provisioningState: string;
  /** Creating, Syncing, Ready, Failed, or Deleting. */
  status: string;
  statusMessage?: string;
  lagSeconds: number;
  pending: { records: number; blobs: number; bytes: number; repositories?: number };
  bytesPerSecond: number;
  /** Estimated seconds until the pending bytes arrive; absent without a measured rate. */
  secondsLeft?: number;
  createdAt: string;
}
