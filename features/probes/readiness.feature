Feature: Readiness gates traffic; startup probes hold back the other probes
  A pod is in its Service's Endpoints as ready only while its readiness probe succeeds; a
  failing readiness probe moves it to notReadyAddresses without restarting it.

  Background:
    Given a cluster with 1 node

  Scenario: Only pods whose readiness probe passes are ready endpoints
    Given I apply:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: web
      spec:
        selector: {app: web}
        ports:
        - port: 80
          targetPort: 8080
      """
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: ready
        labels: {app: web}
      spec:
        containers:
        - name: app
          image: registry.k8s.io/e2e-test-images/agnhost:2.53
          args: ["netexec", "--http-port=8080"]
          readinessProbe:
            httpGet: {path: /, port: 8080}
            periodSeconds: 2
      ---
      apiVersion: v1
      kind: Pod
      metadata:
        name: never-ready
        labels: {app: web}
      spec:
        containers:
        - name: app
          image: registry.k8s.io/e2e-test-images/agnhost:2.53
          args: ["netexec", "--http-port=8080", "--udp-port=-1"]
          readinessProbe:
            # netexec's /healthz answers 412 until its UDP server runs, here never.
            httpGet: {path: /healthz, port: 8080}
            periodSeconds: 2
      """
    Then within 60 seconds pod ready is ready
    And within 30 seconds service web has 1 ready endpoint
    And within 30 seconds service web has 1 not-ready endpoint
    And within 30 seconds pod never-ready has condition Ready False with reason ContainersNotReady
    And within 30 seconds the readiness probe of pod never-ready has failed at least 2 times
    And within 10 seconds pod never-ready shows READY 0/1
    And within 10 seconds container app of pod never-ready has restarted 0 times

  Scenario: A readiness probe that starts failing takes the pod out of the endpoints
    Given I apply:
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: flaky
      spec:
        selector: {app: flaky}
        ports:
        - port: 80
      """
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: flaky
        labels: {app: flaky}
      spec:
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "touch /tmp/ready; sleep 20; rm /tmp/ready; sleep 600"]
          readinessProbe:
            exec:
              command: ["cat", "/tmp/ready"]
            periodSeconds: 2
            failureThreshold: 1
      """
    Then within 30 seconds service flaky has 1 ready endpoint
    And within 60 seconds service flaky has 1 not-ready endpoint
    And within 10 seconds service flaky has 0 ready endpoints
    And within 10 seconds pod flaky is not ready
    And within 10 seconds pod flaky is Running

  Scenario: A startup probe holds back liveness until the slow start is over
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: slow-start
      spec:
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "sleep 15; touch /tmp/started; sleep 600"]
          startupProbe:
            exec:
              command: ["cat", "/tmp/started"]
            periodSeconds: 2
            failureThreshold: 30
          livenessProbe:
            exec:
              command: ["cat", "/tmp/started"]
            periodSeconds: 2
            failureThreshold: 1
      """
    Then within 60 seconds pod slow-start is ready
    And within 10 seconds pod slow-start has events in this order:
      | type    | reason    | message                 |
      | Normal  | Started   | Started container app   |
      | Warning | Unhealthy | Startup probe failed: * |
    And within 10 seconds container app of pod slow-start has restarted 0 times
    And pod slow-start never had events:
      | type    | reason    | message                  |
      | Warning | Unhealthy | Liveness probe failed: * |
      | Normal  | Killing   |                          |

  Scenario: A startup probe that never succeeds gets the container restarted
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: never-starts
      spec:
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "sleep 600"]
          startupProbe:
            exec:
              command: ["cat", "/tmp/started"]
            periodSeconds: 2
            failureThreshold: 3
      """
    Then within 60 seconds container app of pod never-starts has restarted at least 1 time
    And within 10 seconds pod never-starts has events in this order:
      | type    | reason    | message                                                 |
      | Warning | Unhealthy | Startup probe failed: *                                 |
      | Normal  | Killing   | Container app failed startup probe, will be restarted   |
