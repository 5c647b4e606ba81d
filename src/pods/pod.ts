/** The parts of a Pod the pod rules read or write; everything else passes through untouched. */
export interface Container {
  name: string;
  image?: string;
  volumeMounts?: Array<{ name: string; mountPath?: string; subPath?: string }>;
  volumeDevices?: Array<{ name: string; devicePath?: string }>;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; [key: string]: unknown };
  [key: string]: unknown;
}

export interface Volume {
  name: string;
  [source: string]: unknown;
}

export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    generateName?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  spec?: {
    containers?: Container[];
    initContainers?: Container[];
    volumes?: Volume[];
    securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; [key: string]: unknown };
    [key: string]: unknown;
  };
  [key: string]: unknown;
}
