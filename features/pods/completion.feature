Feature: Pods that run to completion
  What happens when a container exits depends on the pod's restartPolicy: Never leaves it
  terminated, OnFailure restarts it only after a failure, Always restarts it every time.

  Background:
    Given a cluster with 1 node

  Scenario: restartPolicy Never and exit 0: the pod Succeeded
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: once
      spec:
        restartPolicy: Never
        containers:
        - name: job
          image: busybox:1.36
          command: ["sh", "-c", "echo done"]
      """
    Then within 30 seconds pod once is Succeeded
    And within 10 seconds container job of pod once has terminated with reason Completed and exit code 0
    And within 10 seconds pod once shows STATUS Completed
    And within 10 seconds pod once has condition Ready False with reason PodCompleted

  Scenario: restartPolicy Never and a failure: the pod Failed and is not restarted
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: fails
      spec:
        restartPolicy: Never
        containers:
        - name: job
          image: busybox:1.36
          command: ["sh", "-c", "exit 3"]
      """
    Then within 30 seconds pod fails is Failed
    And within 10 seconds container job of pod fails has terminated with reason Error and exit code 3
    And within 10 seconds pod fails shows STATUS Error
    And within 10 seconds container job of pod fails has restarted 0 times

  Scenario: restartPolicy OnFailure restarts a failed container until it succeeds
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: retries
      spec:
        restartPolicy: OnFailure
        volumes:
        - name: state
          emptyDir: {}
        containers:
        - name: job
          image: busybox:1.36
          volumeMounts:
          - name: state
            mountPath: /state
          command: ["sh", "-c", "if test -f /state/tried; then echo ok; exit 0; fi; touch /state/tried; exit 1"]
      """
    Then within 60 seconds pod retries is Succeeded
    And within 10 seconds container job of pod retries has restarted 1 time
    And within 10 seconds container job of pod retries has terminated with reason Completed and exit code 0

  Scenario: restartPolicy Always restarts even a container that completed
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: loops
      spec:
        containers:
        - name: app
          image: busybox:1.36
          command: ["sh", "-c", "echo tick"]
      """
    Then within 60 seconds container app of pod loops has restarted at least 2 times
    And within 30 seconds pod loops shows STATUS CrashLoopBackOff
    And within 10 seconds pod loops is Running
    And within 10 seconds container app of pod loops has terminated with reason Completed and exit code 0
