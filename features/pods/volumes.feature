Feature: ConfigMap and Secret volumes
  The kubelet mounts configMap and secret volumes before it starts the containers; a volume
  whose ConfigMap does not exist yet fails to mount (FailedMount) until it appears.

  Background:
    Given a cluster with 1 node

  Scenario: A container reads its configuration from a configMap and a secret volume
    Given a configmap app-config with:
      | key      | value |
      | greeting | hello |
    And a secret db-credentials with:
      | key      | value  |
      | password | s3cret |
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: reader
      spec:
        restartPolicy: Never
        volumes:
        - name: config
          configMap: {name: app-config}
        - name: creds
          secret: {secretName: db-credentials}
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "cat /etc/config/greeting /etc/creds/password"]
          volumeMounts:
          - {name: config, mountPath: /etc/config}
          - {name: creds, mountPath: /etc/creds}
      """
    Then within 30 seconds pod reader is Succeeded
    And within 10 seconds container app of pod reader has terminated with reason Completed and exit code 0
    And the logs of container app of pod reader contain "hello"
    And the logs of container app of pod reader contain "s3cret"

  Scenario: A missing ConfigMap holds the pod in ContainerCreating until it is created
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: waits
      spec:
        volumes:
        - name: config
          configMap: {name: late-config}
        containers:
        - name: app
          image: registry.k8s.io/pause:3.10
          volumeMounts:
          - {name: config, mountPath: /etc/config}
      """
    Then within 30 seconds pod waits has events in this order:
      | type    | reason      | message                                                                  |
      | Warning | FailedMount | MountVolume.SetUp failed for volume "config" : configmap "late-config" not found |
    And within 10 seconds pod waits shows STATUS ContainerCreating
    And within 10 seconds container app of pod waits is waiting with reason ContainerCreating
    When I create a configmap late-config with:
      | key | value |
      | a   | b     |
    Then within 60 seconds pod waits is ready
    And within 10 seconds pod waits has events in this order:
      | type    | reason      | message               |
      | Warning | FailedMount | *late-config*         |
      | Normal  | Started     | Started container app |
