{{/* The pod template shared by the Deployment (1 replica) and the StatefulSet (sharded). */}}
{{- define "dli-exporter.podTemplate" -}}
{{- $credentials := include "dli-exporter.credentialsSecret" . }}
{{- $webSecret := include "dli-exporter.webConfigSecret" . }}
{{- $https := include "dli-exporter.https" . -}}
metadata:
  labels:
    {{- include "dli-exporter.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # The exporter re-reads its files only on SIGHUP or /-/reload: a changed config rolls the pods.
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- if and $credentials (not .Values.credentials.existingSecret) }}
    checksum/credentials: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
    {{- end }}
    {{- if and $webSecret (not .Values.webConfig.existingSecret) }}
    checksum/web-config: {{ include (print $.Template.BasePath "/web-config-secret.yaml") . | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "dli-exporter.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.automountServiceAccountToken }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: dli-exporter
      image: {{ include "dli-exporter.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - --config.file=/etc/dli-exporter/config/config.yaml
        - --web.listen-address=:{{ .Values.containerPort }}
        - --log.level={{ .Values.log.level }}
        - --log.format={{ .Values.log.format }}
        {{- if $webSecret }}
        - --web.config.file=/etc/dli-exporter/web/{{ .Values.webConfig.key }}
        {{- end }}
        {{- if include "dli-exporter.sharded" . }}
        # Each pod polls its share of the targets: the index is its name's ordinal (HOSTNAME).
        - --shard=auto/{{ int .Values.replicas }}
        {{- end }}
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      {{- if or (include "dli-exporter.sharded" .) (and $credentials (eq .Values.credentials.mode "env")) .Values.extraEnv }}
      env:
        {{- if include "dli-exporter.sharded" . }}
        # The pod's own name, even where the kernel's host name is truncated to 63 characters.
        - name: HOSTNAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- end }}
        {{- if and $credentials (eq .Values.credentials.mode "env") }}
        - name: HUAWEICLOUD_SDK_AK
          valueFrom:
            secretKeyRef:
              name: {{ $credentials }}
              key: {{ .Values.credentials.keys.accessKey }}
        - name: HUAWEICLOUD_SDK_SK
          valueFrom:
            secretKeyRef:
              name: {{ $credentials }}
              key: {{ .Values.credentials.keys.secretKey }}
        - name: HUAWEICLOUD_SDK_SECURITY_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ $credentials }}
              key: {{ .Values.credentials.keys.securityToken }}
              optional: true
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      {{- with .Values.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: http
          containerPort: {{ .Values.containerPort }}
          protocol: TCP
      {{- range $name := list "livenessProbe" "readinessProbe" }}
      {{- $probe := deepCopy (index $.Values $name) }}
      {{- if and $probe $https $probe.httpGet }}
      {{- $_ := set $probe.httpGet "scheme" "HTTPS" }}
      {{- end }}
      {{- with $probe }}
      {{ $name }}:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- end }}
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: config
          mountPath: /etc/dli-exporter/config
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- if $webSecret }}
        - name: web-config
          mountPath: /etc/dli-exporter/web
          readOnly: true
        {{- end }}
        {{- if and $webSecret .Values.webConfig.tlsSecret }}
        - name: web-tls
          mountPath: /etc/dli-exporter/web-tls
          readOnly: true
        {{- end }}
        {{- if and $credentials (eq .Values.credentials.mode "files") }}
        - name: credentials
          mountPath: {{ .Values.credentials.mountPath }}
          readOnly: true
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    # A directory mount (no subPath), so kubelet updates the file on a ConfigMap change.
    - name: config
      configMap:
        name: {{ include "dli-exporter.fullname" . }}
    - name: tmp
      emptyDir:
        sizeLimit: 16Mi
    {{- if $webSecret }}
    - name: web-config
      secret:
        secretName: {{ $webSecret }}
        defaultMode: 0440
    {{- end }}
    {{- if and $webSecret .Values.webConfig.tlsSecret }}
    - name: web-tls
      secret:
        secretName: {{ .Values.webConfig.tlsSecret }}
        defaultMode: 0440
    {{- end }}
    {{- if and $credentials (eq .Values.credentials.mode "files") }}
    - name: credentials
      secret:
        secretName: {{ $credentials }}
        defaultMode: 0440
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
