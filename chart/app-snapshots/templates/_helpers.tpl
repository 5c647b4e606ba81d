{{/* Names ------------------------------------------------------------------------------------ */}}

{{- define "app-snapshots.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-app-snapshots (or the release name alone when it already holds the chart name), at most 63 characters. */}}
{{- define "app-snapshots.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The fullname cut so that "<it>-webhook" and "<it>-storage" fit a Service name (a 63-character DNS label). */}}
{{- define "app-snapshots.shortname" -}}
{{- include "app-snapshots.fullname" . | trunc 55 | trimSuffix "-" -}}
{{- end -}}

{{- define "app-snapshots.webhook.name" -}}{{ include "app-snapshots.shortname" . }}-webhook{{- end -}}
{{- define "app-snapshots.webhook.tlsSecret" -}}{{ include "app-snapshots.fullname" . }}-webhook-tls{{- end -}}
{{- define "app-snapshots.webhook.lease" -}}{{ include "app-snapshots.fullname" . }}-webhook-leader{{- end -}}
{{- define "app-snapshots.webhook.podsConfig" -}}{{ include "app-snapshots.fullname" . }}-pods{{- end -}}
{{- define "app-snapshots.webhook.veleroConfig" -}}{{ include "app-snapshots.fullname" . }}-velero{{- end -}}
{{- define "app-snapshots.storage.name" -}}{{ include "app-snapshots.shortname" . }}-storage{{- end -}}
{{- define "app-snapshots.storage.pv" -}}{{ .Release.Namespace }}-{{ include "app-snapshots.fullname" . }}-storage{{- end -}}
{{- define "app-snapshots.storage.credentialsSecret" -}}
{{- default (printf "%s-storage-credentials" (include "app-snapshots.fullname" .)) .Values.storage.credentials.existingSecret -}}
{{- end -}}

{{/* Labels and annotations ----------------------------------------------------------------------- */}}

{{- define "app-snapshots.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component: pass (dict "root" $ "component" "webhook"). */}}
{{- define "app-snapshots.selectorLabels" -}}
app.kubernetes.io/name: {{ include "app-snapshots.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{/* Every object's labels: pass (dict "root" $ "component" "webhook"), component optional. */}}
{{- define "app-snapshots.labels" -}}
{{ include "app-snapshots.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: app-snapshots
helm.sh/chart: {{ include "app-snapshots.chart" .root }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata for an object: pass (dict "root" $ "component" "webhook" "name" "x" "namespace" "ns" "annotations" (dict)). */}}
{{- define "app-snapshots.metadata" -}}
metadata:
  name: {{ .name }}
  {{- with .namespace }}
  namespace: {{ . }}
  {{- end }}
  labels:
    {{- include "app-snapshots.labels" . | nindent 4 }}
    {{- with .extraLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- $annotations := merge (dict) (.annotations | default (dict)) (.root.Values.commonAnnotations | default (dict)) }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* Pods ------------------------------------------------------------------------------------------ */}}

{{- define "app-snapshots.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}:{{ $tag }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{/* Pod-level fields that meet Pod Security "restricted". */}}
{{- define "app-snapshots.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .Values.podSecurityContext.runAsUser }}
  runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
  fsGroup: {{ .Values.podSecurityContext.fsGroup }}
  fsGroupChangePolicy: OnRootMismatch
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{- define "app-snapshots.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities:
    drop: [ALL]
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* Everything both pod specs share besides containers and volumes: pass (dict "root" $ "component" "webhook" "values" .Values.webhook "automount" true). */}}
{{- define "app-snapshots.podCommon" -}}
{{- $root := .root -}}
serviceAccountName: {{ .serviceAccount }}
automountServiceAccountToken: {{ .automount }}
enableServiceLinks: false
terminationGracePeriodSeconds: 30
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ if kindIs "string" . }}{{ . }}{{ else }}{{ .name }}{{ end }}
  {{- end }}
{{- end }}
{{ include "app-snapshots.podSecurityContext" $root }}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod template metadata: pass (dict "root" $ "component" "webhook"). */}}
{{- define "app-snapshots.podMetadata" -}}
metadata:
  labels:
    {{- include "app-snapshots.labels" . | nindent 4 }}
    {{- with .root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .root.Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* Probes on the plain-HTTP port named "health": start-up and readiness on /readyz, liveness on /healthz. */}}
{{- define "app-snapshots.probes" -}}
startupProbe:
  httpGet:
    path: /readyz
    port: health
  periodSeconds: 2
  timeoutSeconds: 2
  failureThreshold: 90
readinessProbe:
  httpGet:
    path: /readyz
    port: health
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
livenessProbe:
  httpGet:
    path: /healthz
    port: health
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
{{- end -}}

{{- define "app-snapshots.logLevelEnv" -}}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}

{{/* Modes ----------------------------------------------------------------------------------------- */}}

{{/* The webhook's certificate mode: certManager, existingSecret or selfManaged. */}}
{{- define "app-snapshots.certMode" -}}
{{- if .Values.certManager.enabled -}}certManager
{{- else if .Values.certs.existingSecret -}}existingSecret
{{- else -}}selfManaged
{{- end -}}
{{- end -}}

{{/* The storage volume mode: hostPath, nfs or existingClaim (validate.yaml makes sure exactly one is set). */}}
{{- define "app-snapshots.volumeMode" -}}
{{- $volume := .Values.storage.volume -}}
{{- if $volume.hostPath -}}hostPath
{{- else if $volume.nfs -}}nfs
{{- else if $volume.existingClaim -}}existingClaim
{{- end -}}
{{- end -}}

{{/* The PVC the storage pod mounts. */}}
{{- define "app-snapshots.storage.claim" -}}
{{- if eq (include "app-snapshots.volumeMode" .) "existingClaim" -}}
{{ .Values.storage.volume.existingClaim }}
{{- else -}}
{{ include "app-snapshots.storage.name" . }}
{{- end -}}
{{- end -}}

{{/* Whether the webhook Deployment runs at all: enabled with at least one webhook configuration. */}}
{{- define "app-snapshots.webhook.enabled" -}}
{{- if and .Values.webhook.enabled (or .Values.webhook.pods.enabled .Values.webhook.velero.enabled) -}}true{{- end -}}
{{- end -}}

{{/*
clientConfig and caBundle of a webhook entry: pass (dict "root" $ "path" "/mutate/pods").
Self-managed: caBundle from the Secret the running leader keeps (found with lookup on upgrades, so an
upgrade or a GitOps diff does not blank it; the leader also patches it). cert-manager: the cainjector fills
it (annotation on the configuration). existingSecret: from certs.caBundle.
*/}}
{{- define "app-snapshots.webhook.clientConfig" -}}
{{- $root := .root -}}
{{- $mode := include "app-snapshots.certMode" $root -}}
{{- $caBundle := "" -}}
{{- if eq $mode "existingSecret" -}}
{{- $caBundle = $root.Values.certs.caBundle | b64enc -}}
{{- else if eq $mode "selfManaged" -}}
{{- $secret := lookup "v1" "Secret" $root.Release.Namespace (include "app-snapshots.webhook.tlsSecret" $root) -}}
{{- if and $secret $secret.data -}}
{{- $caBundle = index $secret.data "ca.crt" | default "" -}}
{{- end -}}
{{- end -}}
clientConfig:
  {{- if $root.Values.webhook.url }}
  url: {{ printf "%s%s" $root.Values.webhook.url .path | quote }}
  {{- else }}
  service:
    name: {{ include "app-snapshots.webhook.name" $root }}
    namespace: {{ $root.Release.Namespace }}
    path: {{ .path }}
    port: 443
  {{- end }}
  {{- with $caBundle }}
  caBundle: {{ . }}
  {{- end }}
{{- end -}}

{{/* Annotations of a webhook configuration (cert-manager's cainjector in cert-manager mode). */}}
{{- define "app-snapshots.webhook.configAnnotations" -}}
{{- if eq (include "app-snapshots.certMode" .) "certManager" -}}
{{- dict "cert-manager.io/inject-ca-from" (printf "%s/%s" .Release.Namespace (include "app-snapshots.webhook.name" .)) | toYaml -}}
{{- else -}}
{{- dict | toYaml -}}
{{- end -}}
{{- end -}}

{{- /*
A Go duration (values.schema.json's pattern: 1h30m, 8760h, 180s, 1.5h) in milliseconds, as a float.
*/ -}}
{{- define "app-snapshots.durationMs" -}}
{{- $total := 0.0 -}}
{{- $unitMs := dict "ns" 0.000001 "us" 0.001 "µs" 0.001 "ms" 1.0 "s" 1000.0 "m" 60000.0 "h" 3600000.0 -}}
{{- range (regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)" . -1) -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" . -}}
{{- $unit := trimPrefix $number . -}}
{{- $total = addf $total (mulf (float64 $number) (get $unitMs $unit)) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* Storage TLS ------------------------------------------------------------------------------------ */}}

{{/*
Where the storage's serving certificate comes from: "" (plain HTTP), existingSecret, selfManaged (the webhook's
elected replica issues it from its CA), certManager, or none (no source: validate.yaml refuses it).
*/}}
{{- define "app-snapshots.storage.tlsMode" -}}
{{- $tls := .Values.storage.tls -}}
{{- if not $tls.enabled -}}
{{- else if $tls.existingSecret -}}existingSecret
{{- else if .Values.certManager.enabled -}}certManager
{{- else if and (include "app-snapshots.webhook.enabled" .) (not .Values.certs.existingSecret) -}}selfManaged
{{- else -}}none
{{- end -}}
{{- end -}}

{{- define "app-snapshots.storage.tlsSecret" -}}
{{- default (printf "%s-storage-tls" (include "app-snapshots.fullname" .)) .Values.storage.tls.existingSecret -}}
{{- end -}}

{{/* The storage certificate's DNS names, one a line: the Service's names, then storage.tls.extraDnsNames. */}}
{{- define "app-snapshots.storage.dnsNames" -}}
{{- $name := include "app-snapshots.storage.name" . -}}
{{- $names := list $name (printf "%s.%s" $name .Release.Namespace) (printf "%s.%s.svc" $name .Release.Namespace) -}}
{{- join "\n" (concat $names .Values.storage.tls.extraDnsNames) -}}
{{- end -}}

{{/* The S3 endpoint inside the cluster, as the BackupStorageLocation names it. */}}
{{- define "app-snapshots.storage.s3Url" -}}
{{- printf "%s://%s.%s.svc:9000" (ternary "https" "http" .Values.storage.tls.enabled) (include "app-snapshots.storage.name" .) .Release.Namespace -}}
{{- end -}}

{{/* The ConfigMap holding the CA of the apiserver's client certificate (webhook.clientAuth). */}}
{{- define "app-snapshots.webhook.clientCaConfigMap" -}}
{{- default (printf "%s-webhook-client-ca" (include "app-snapshots.fullname" .)) .Values.webhook.clientAuth.existingConfigMap -}}
{{- end -}}

{{/* The cert-manager issuer of our certificates: certManager.issuerRef, else the chart's own CA Issuer. */}}
{{- define "app-snapshots.certManager.issuerRef" -}}
{{- $ref := .Values.certManager.issuerRef -}}
{{- if not $ref -}}
{{- $ref = dict "name" (printf "%s-webhook-ca" (include "app-snapshots.fullname" .)) "kind" "Issuer" "group" "cert-manager.io" -}}
{{- end -}}
name: {{ $ref.name }}
kind: {{ $ref.kind | default "Issuer" }}
group: {{ $ref.group | default "cert-manager.io" }}
{{- end -}}
