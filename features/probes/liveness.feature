Feature: Liveness probes restart containers that stop being healthy
  A container whose liveness probe fails failureThreshold times in a row is killed and
  restarted; a container that keeps failing goes into CrashLoopBackOff, with the back-off
  doubling from 10 seconds.

  Background:
    Given a cluster with 1 node

  @needs:accelerated-time
  Scenario: agnhost liveness stops answering after 10 seconds and is restarted, again and again
    # The classic upstream example: /healthz answers 200 for 10 s after the start, then 500.
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: liveness-http
      spec:
        containers:
        - name: agnhost
          image: registry.k8s.io/e2e-test-images/agnhost:2.53
          args: ["liveness"]
          livenessProbe:
            httpGet:
              path: /healthz
              port: 8080
            initialDelaySeconds: 3
            periodSeconds: 3
      """
    Then within 60 seconds the liveness probe of pod liveness-http has failed at least 3 times
    And within 30 seconds container agnhost of pod liveness-http has restarted at least 1 time
    And within 30 seconds pod liveness-http has events in this order:
      | type    | reason    | message                                                         |
      | Normal  | Started   | Started container agnhost                                       |
      | Warning | Unhealthy | Liveness probe failed: HTTP probe failed with statuscode: 500   |
      | Normal  | Killing   | Container agnhost failed liveness probe, will be restarted      |
      | Normal  | Pulled    | Container image "registry.k8s.io/e2e-test-images/agnhost:2.53" already present on machine* |
      | Normal  | Started   | Started container agnhost                                       |

  Scenario: An exec liveness probe fails once the file it checks is removed
    # The upstream docs' liveness-exec example, with shorter sleeps.
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: liveness-exec
      spec:
        containers:
        - name: liveness
          image: busybox:1.36
          args: ["/bin/sh", "-c", "touch /tmp/healthy; sleep 10; rm -f /tmp/healthy; sleep 600"]
          livenessProbe:
            exec:
              command: ["cat", "/tmp/healthy"]
            initialDelaySeconds: 2
            periodSeconds: 2
      """
    Then within 60 seconds container liveness of pod liveness-exec has restarted at least 1 time
    And within 10 seconds pod liveness-exec has events in this order:
      | type    | reason    | message                                                         |
      | Warning | Unhealthy | Liveness probe failed: cat: can't open '/tmp/healthy': No such file or directory* |
      | Normal  | Killing   | Container liveness failed liveness probe, will be restarted     |

  @needs:accelerated-time
  Scenario: A container that keeps crashing backs off 10, 20, 40 seconds between restarts
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: crash
      spec:
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "echo starting; exit 1"]
      """
    Then within 30 seconds container app of pod crash is waiting with reason CrashLoopBackOff
    And within 10 seconds pod crash shows STATUS CrashLoopBackOff
    And within 10 seconds pod crash is Running
    And within 120 seconds container app of pod crash has restarted after back-offs of 0s, 10s, 20s and 40s
    And within 10 seconds container app of pod crash has terminated with reason Error and exit code 1
    And within 10 seconds pod crash has events in this order:
      | type    | reason  | message                                                      |
      | Normal  | Started | Started container app                                        |
      | Warning | BackOff | Back-off restarting failed container app in pod crash_*(*)   |

  @needs:accelerated-time
  Scenario: A gRPC liveness probe restarts a container whose health service stops serving
    # agnhost grpc-health-checking answers SERVING for 10 s, then NOT_SERVING, as in upstream's
    # gRPC probe tests.
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: liveness-grpc
      spec:
        containers:
        - name: agnhost
          image: registry.k8s.io/e2e-test-images/agnhost:2.53
          args: ["grpc-health-checking", "--delay-unhealthy-sec=10"]
          ports:
          - containerPort: 5000
          livenessProbe:
            grpc:
              port: 5000
            initialDelaySeconds: 5
            periodSeconds: 3
            # As upstream's gRPC probe tests: the default 1 s is aggressive on a loaded machine
            # (on the accelerated clock, 1 s is 50 ms of a debug build's time).
            timeoutSeconds: 5
            failureThreshold: 1
      """
    Then within 60 seconds container agnhost of pod liveness-grpc has restarted at least 1 time
    And within 10 seconds pod liveness-grpc has events in this order:
      | type    | reason    | message                                                                  |
      | Normal  | Started   | Started container agnhost                                                |
      | Warning | Unhealthy | Liveness probe failed: service unhealthy (responded with "NOT_SERVING") |
      | Normal  | Killing   | Container agnhost failed liveness probe, will be restarted               |

  Scenario: A redirect to another host warns instead of failing the probe
    # As upstream's "should *not* be restarted with a non-local redirect http liveness probe".
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: remote-redirect
      spec:
        containers:
        - name: agnhost
          image: registry.k8s.io/e2e-test-images/agnhost:2.53
          args: ["liveness"]
          livenessProbe:
            httpGet:
              path: /redirect?loc=http%3A%2F%2F0.0.0.0%2F
              port: 8080
            periodSeconds: 2
            failureThreshold: 1
      """
    Then within 30 seconds pod remote-redirect has events in this order:
      | type    | reason       | message                                                                                        |
      | Normal  | Started      | Started container agnhost                                                                      |
      | Warning | ProbeWarning | Liveness probe warning: Probe terminated redirects, Response body: <a href="http://0.0.0.0/">Found</a>.* |
    And pod remote-redirect never had events:
      | type    | reason    | message |
      | Warning | Unhealthy | *       |
      | Normal  | Killing   | *       |
