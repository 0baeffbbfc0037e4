Feature: Jobs
  A Job runs pods until enough of them succeed: at most `parallelism` at a time, a new pod after
  each failure (after a back-off of 10 seconds, doubling), and gives up after more failures than
  its `backoffLimit`. Each outcome shows as a condition and an event.

  Scenario: A Job runs its pods to completion, two at a time
    Given a cluster with 1 node
    When I apply:
      """
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: pi
      spec:
        completions: 3
        parallelism: 2
        template:
          spec:
            restartPolicy: Never
            containers:
            - name: pi
              image: busybox:1.36
              command: [sh, -c, "echo 3.14159"]
      """
    Then within 60 seconds job pi has condition Complete True with reason CompletionsReached
    And within 10 seconds job pi has 3 succeeded and 0 failed pods
    And within 10 seconds the pods of job pi are Succeeded
    And the logs of container pi of the pods of job pi contain "3.14159"
    And within 10 seconds job pi has events in this order:
      | reason           | message           |
      | SuccessfulCreate | Created pod: pi-* |
      | SuccessfulCreate | Created pod: pi-* |
      | SuccessfulCreate | Created pod: pi-* |
      | Completed        | Job completed     |

  Scenario: A failing Job backs off between pods and gives up after its backoffLimit
    Given a cluster with 1 node
    When I apply:
      """
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: flaky
      spec:
        backoffLimit: 2
        template:
          spec:
            restartPolicy: Never
            containers:
            - name: flaky
              image: busybox:1.36
              command: [sh, -c, "exit 1"]
      """
    Then within 2 minutes job flaky has condition Failed True with reason BackoffLimitExceeded
    And within 10 seconds job flaky has condition FailureTarget True with reason BackoffLimitExceeded
    And within 10 seconds job flaky has 0 succeeded and 3 failed pods
    And within 10 seconds job flaky has events in this order:
      | type    | reason               | message                                     |
      | Normal  | SuccessfulCreate     | Created pod: flaky-*                        |
      | Normal  | SuccessfulCreate     | Created pod: flaky-*                        |
      | Normal  | SuccessfulCreate     | Created pod: flaky-*                        |
      | Warning | BackoffLimitExceeded | Job has reached the specified backoff limit |

  Scenario: An Indexed Job gives each pod its completion index
    Given a cluster with 2 nodes
    When I apply:
      """
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: idx
      spec:
        completionMode: Indexed
        completions: 3
        parallelism: 3
        template:
          spec:
            restartPolicy: Never
            containers:
            - name: worker
              image: busybox:1.36
              command: [sh, -c, "echo working on $JOB_COMPLETION_INDEX"]
      """
    Then within 60 seconds job idx has condition Complete True
    And the logs of container worker of pod idx-0-* contain "working on 0"
    And the logs of container worker of pod idx-2-* contain "working on 2"

  Scenario: A suspended Job starts no pod until it is resumed
    Given a cluster with 1 node
    When I apply:
      """
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: later
      spec:
        suspend: true
        template:
          spec:
            restartPolicy: Never
            containers:
            - name: later
              image: busybox:1.36
              command: [sh, -c, "echo finally"]
      """
    Then within 30 seconds job later has condition Suspended True with reason JobSuspended
    And job later never has events:
      | reason           |
      | SuccessfulCreate |
    When I apply:
      """
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: later
      spec:
        suspend: false
        template:
          spec:
            restartPolicy: Never
            containers:
            - name: later
              image: busybox:1.36
              command: [sh, -c, "echo finally"]
      """
    Then within 60 seconds job later has condition Complete True
    And within 10 seconds job later has condition Suspended False with reason JobResumed
    And within 10 seconds job later has events in this order:
      | reason           | message                |
      | Suspended        | Job suspended          |
      | Resumed          | Job resumed            |
      | SuccessfulCreate | Created pod: later-*   |
      | Completed        | Job completed          |
