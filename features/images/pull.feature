Feature: Pulling images
  The kubelet pulls images as the pull policy says. A reference the registry does not have fails
  with ErrImagePull, then waits in ImagePullBackOff with a growing back-off between attempts.

  Background:
    Given a cluster with 1 node

  Scenario: An image tag that does not exist never starts
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: typo
      spec:
        containers:
        - name: app
          image: nginx:does-not-exist
      """
    Then within 30 seconds container app of pod typo is waiting with reason ImagePullBackOff
    And within 10 seconds pod typo shows STATUS ImagePullBackOff
    And within 60 seconds pod typo has events in this order:
      | type    | reason  | message                                                         |
      | Normal  | Pulling | Pulling image "nginx:does-not-exist"                       |
      | Warning | Failed  | Failed to pull image "nginx:does-not-exist": *not found*   |
      | Warning | Failed  | Error: ErrImagePull                                             |
      | Normal  | BackOff | Back-off pulling image "nginx:does-not-exist"              |
      | Warning | Failed  | Error: ImagePullBackOff                                         |
    And pod typo never had events:
      | reason  |
      | Created |
      | Started |

  Scenario: An invalid image name is refused before any pull
    When I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: invalid
      spec:
        containers:
        - name: app
          image: "nginx:Not A Tag"
      """
    Then within 30 seconds container app of pod invalid is waiting with reason InvalidImageName
    And within 10 seconds pod invalid has events in this order:
      | type    | reason         | message                            |
      | Warning | InspectFailed  | *Failed to apply default image tag* |
    And pod invalid never had events:
      | reason  |
      | Pulling |

  @needs:image-unavailable
  Scenario: An image the registry loses cannot be pulled by new pods, and can again once it is back
    When image nginx:1.27 becomes unavailable
    And I apply:
      """
      apiVersion: v1
      kind: Pod
      metadata:
        name: late
      spec:
        containers:
        - name: app
          image: nginx:1.27
      """
    Then within 30 seconds container app of pod late is waiting with reason ErrImagePull
    When image nginx:1.27 becomes available again
    Then within 120 seconds pod late is Running
    And within 10 seconds pod late has events in this order:
      | type    | reason  | message                                      |
      | Warning | Failed  | Failed to pull image "nginx:1.27": *         |
      | Normal  | BackOff | Back-off pulling image "nginx:1.27"          |
      | Normal  | Pulled  | Successfully pulled image "nginx:1.27" in *  |
      | Normal  | Started | Started container app                        |
